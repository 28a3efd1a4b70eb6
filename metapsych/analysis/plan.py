"""The grid: which cells (condition x approach x comparator x time) a config asks for, and their rows.

``plan_cells`` turns the effect table (the comparison table with ``yi``/``vi``) and the config into one
``CellPlan`` per grid point that has at least one trial with a computable effect. Whether a cell has
enough trials to be pooled is decided later (it is still listed, as ``too_few_trials``).

Head-to-head cells between two therapies are oriented alphabetically (``cbt.vs.pst``, never ``pst.vs.cbt``),
flipping the sign of effects reported the other way round, so that one pair of approaches is one cell.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from metapsych.analysis.config import AnalysisConfig, Config
from metapsych.errors import ConfigError, Problem

if TYPE_CHECKING:
    import pandas as pd

ALL_CONTROLS = "all-controls"
CELL_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)*$")


class RowTable:
    """The rows of one analysis (filtered and oriented), which its cells share: each cell is a set of
    positions in it. Columns are turned into numpy arrays once, when first asked for, so that a cell's rows
    can be hashed (``inputs.cell_key``) without building a DataFrame per cell."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._arrays: dict[str, np.ndarray] = {}

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` as a numpy array (object for text), computed once."""
        if name not in self._arrays:
            self._arrays[name] = self.frame[name].to_numpy()
        return self._arrays[name]


@dataclass(frozen=True)
class CellPlan:
    """One grid point: its coordinates, the analysis that asked for it, and its effect rows (oriented):
    ``positions`` in the analysis' ``table``, in table order."""

    id: str
    condition: str
    approach: str
    comparator: str
    time: str
    analysis: str
    subgroups: tuple[str, ...]
    min_studies: int
    table: RowTable = field(repr=False, compare=False)
    positions: np.ndarray = field(repr=False, compare=False)

    @functools.cached_property
    def rows(self) -> pd.DataFrame:
        """The cell's effect rows (built on first use: a cell found in the cache never needs them)."""
        return self.table.frame.take(self.positions)

    @property
    def n_trials(self) -> int:
        """Number of distinct trials contributing to the cell."""
        return len(set(self.table.column("trial")[self.positions].tolist()))


def usable_rows(effects: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite effect size and a positive finite sampling variance."""
    import numpy as np

    yi = effects["yi"].to_numpy(dtype=float)
    vi = effects["vi"].to_numpy(dtype=float)
    return effects[np.isfinite(yi) & np.isfinite(vi) & (vi > 0)]


def plan_cells(effects: pd.DataFrame, config: Config, config_file: str = "config") -> list[CellPlan]:
    """All cells of all analyses, sorted by id; ConfigError if two analyses claim the same cell."""
    rows = usable_rows(effects)
    cells: dict[str, CellPlan] = {}
    for analysis in config.analyses:
        for cell in _analysis_cells(rows, analysis, config):
            if cell.id in cells:
                other = cells[cell.id].analysis
                raise ConfigError([Problem(config_file, None, "analyses",
                                           f"analyses '{other}' and '{analysis.name}' both produce cell {cell.id}",
                                           "analyses that do not overlap")])
            cells[cell.id] = cell
    return [cells[key] for key in sorted(cells)]


def _analysis_cells(rows: pd.DataFrame, analysis: AnalysisConfig, config: Config) -> list[CellPlan]:
    rows = _filter(rows, analysis)
    if analysis.comparators == "head-to-head":
        rows = _oriented_head_to_head(rows[rows["kind_arm2"] != "control"])
        keys = ["condition", "condition_arm1", "condition_arm2", "time"]
    else:
        rows = rows[rows["kind_arm2"] == "control"]
        if analysis.controls is not None:
            rows = rows[rows["condition_arm2"].isin(analysis.controls)]
        keys = ["condition", "condition_arm1", "time"]
        if analysis.comparators == "each-control":
            keys.insert(2, "condition_arm2")
    min_studies = analysis.min_studies or config.min_studies
    table = RowTable(rows)
    cells = []
    for (condition, approach, *rest), positions in _groups(rows, keys):
        comparator = rest[0] if len(rest) == 2 else ALL_CONTROLS
        time = rest[-1]
        cell_id = ".".join([condition, approach, "vs", comparator, time])
        if not CELL_ID.match(cell_id):
            continue
        cells.append(CellPlan(cell_id, condition, approach, comparator, time, analysis.name,
                              tuple(analysis.subgroups), min_studies, table, positions))
    return cells


def _groups(rows: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, np.ndarray]]:
    """(key values, row positions) of each group of ``rows`` by ``keys``, as ``groupby(keys, sort=True)``
    iterates them (rows with a missing key in no group), without building the groups' frames."""
    codes = rows.groupby(keys, sort=True).ngroup().to_numpy(dtype=float)
    order = np.argsort(codes, kind="stable")
    order = order[~np.isnan(codes[order])]
    if order.size == 0:
        return []
    starts = np.flatnonzero(np.diff(codes[order], prepend=-1.0))
    values = [rows[key].to_numpy() for key in keys]
    return [(tuple(column[positions[0]] for column in values), positions)
            for positions in np.split(order, starts[1:])]


def _filter(rows: pd.DataFrame, analysis: AnalysisConfig) -> pd.DataFrame:
    keep = rows["time"].isin(analysis.time)
    if analysis.conditions is not None:
        keep &= rows["condition"].isin(analysis.conditions)
    if analysis.approaches is not None:
        keep &= rows["condition_arm1"].isin(analysis.approaches)
    if analysis.instruments is not None:
        keep &= rows["instrument"].isin(analysis.instruments)
    if analysis.ratings is not None:
        keep &= rows["rating"].isin(analysis.ratings)
    return rows[keep]


def _oriented_head_to_head(rows: pd.DataFrame) -> pd.DataFrame:
    """Flip therapy-vs-therapy rows whose approaches are in reverse alphabetical order."""
    flip = (rows["kind_arm2"] == "active") & (rows["condition_arm1"] > rows["condition_arm2"])
    if not flip.any():
        return rows
    rows = rows.copy()
    swap = {"condition_arm1": "condition_arm2", "arm1": "arm2", "n_arm1": "n_arm2"}
    for a, b in swap.items():
        if a in rows and b in rows:
            rows.loc[flip, [a, b]] = rows.loc[flip, [b, a]].to_numpy()
    rows.loc[flip, "yi"] = -rows.loc[flip, "yi"]
    return rows
