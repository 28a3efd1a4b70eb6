"""A cell's trial-level inputs: one effect per trial after dependency handling, plus the cell's input hash.

Several effects of one trial in one cell (outcomes, time points, arms) are either aggregated within the
trial assuming a correlation rho between them (metafor's ``aggregate(..., struct="CS")``, metapsyTools'
"combined" model) or reduced to the first listed effect. ``inputs_sha256`` (``cell_key``) hashes every input
row, the settings and the analysis code, so a cached cell result is reused only when nothing it depends on
changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from metapsych.analysis.cache import code_version, sha256_columns, sha256_json
from metapsych.analysis.plan import CellPlan

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.analysis.config import Config

# Columns of an input row that can change a cell's result or its rendering.
ROW_COLUMNS = ("trial", "study", "arm1", "arm2", "condition_arm2", "format", "rob", "year", "n_arm1", "n_arm2",
               "instrument", "time_weeks", "formula", "yi", "vi")
TRIAL_COLUMNS = ("study", "rob", "year", "format", "condition_arm2", "formula")


@dataclass(frozen=True)
class CellInputs:
    """Trial-level effects of one cell (trials sorted by id) and the hash of everything behind them."""

    plan: CellPlan
    trials: tuple[str, ...]
    yi: np.ndarray
    vi: np.ndarray
    info: tuple[dict, ...]
    n_participants: int
    inputs_sha256: str
    effects: dict[str, list]  # the effect-level rows (trial, yi, vi, rob_low) before dependency handling

    @property
    def k(self) -> int:
        """Number of pooled effects (one per trial)."""
        return len(self.trials)


def cell_key(plan: CellPlan, config: Config) -> str:
    """The hash of everything a cell's result depends on: its input rows (the ROW_COLUMNS, exactly, in the
    plan's row order), the settings, the cell's coordinates and the analysis code. Hashed from the plan's
    row positions in its analysis' columns, so that a cached cell costs a hash and nothing more."""
    columns = [(name, plan.table.column(name)[plan.positions]) for name in ROW_COLUMNS if name in plan.table.frame]
    payload = {
        "version": code_version(),
        "cell": [plan.id, plan.analysis, list(plan.subgroups), plan.min_studies],
        "settings": config.model_dump(mode="json", include={"effect", "model", "dependency", "bias_min_studies",
                                                            "sensitivity"}),
        "rows": sha256_columns(columns),
    }
    return sha256_json(payload)


def cell_inputs(plan: CellPlan, config: Config, key: str | None = None) -> CellInputs:
    """Reduce a cell's rows to one effect per trial; ``key`` is its ``cell_key`` (computed if not given)."""
    rows = plan.rows.sort_values(["trial"], kind="stable")
    cols = [c for c in ROW_COLUMNS if c in rows]
    records = [dict(zip(cols, values)) for values in zip(*(_column(rows[c]) for c in cols))]
    by_trial: dict[str, list[dict]] = {}
    for record in records:
        by_trial.setdefault(record["trial"], []).append(record)
    trials = tuple(by_trial)
    yi, vi = trial_effects(rows, trials, config.dependency.method, config.dependency.rho)
    info = tuple(_trial_info(by_trial[t]) for t in trials)
    participants = sum((i["n_arm1"] or 0) + (i["n_arm2"] or 0) for i in info)
    effects = {"trial": [r["trial"] for r in records], "yi": [r["yi"] for r in records],
               "vi": [r["vi"] for r in records],
               "rob_low": [None if r.get("rob") is None else r["rob"] == "low" for r in records]}
    return CellInputs(plan, trials, yi, vi, info, participants, key or cell_key(plan, config), effects)


def trial_effects(rows: pd.DataFrame, trials: tuple[str, ...], method: str, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """One (yi, vi) per trial, in the order of ``trials`` (sorted ids); rows must be sorted by trial (stable)."""
    y = rows["yi"].to_numpy(dtype=float)
    v = rows["vi"].to_numpy(dtype=float)
    codes = {t: i for i, t in enumerate(trials)}
    cluster = np.fromiter((codes[t] for t in rows["trial"]), dtype=int, count=len(rows))
    if method == "first":
        first = np.unique(cluster, return_index=True)[1]
        return y[first], v[first]
    from metapsych.stats.aggregate import aggregate

    y_agg, v_agg, _ = aggregate(y, v, cluster, rho=rho)
    return np.asarray(y_agg, dtype=float), np.asarray(v_agg, dtype=float)


def _trial_info(records: list[dict]) -> dict:
    first = records[0]
    info = {col: first.get(col) for col in TRIAL_COLUMNS}
    if isinstance(info["year"], float) and info["year"].is_integer():
        info["year"] = int(info["year"])
    info["comparator"] = info.pop("condition_arm2")
    info["n_effects"] = len(records)
    info["n_arm1"] = _arm_total(records, "arm1", "n_arm1")
    info["n_arm2"] = _arm_total(records, "arm2", "n_arm2")
    return info


def _arm_total(records: list[dict], arm: str, n: str) -> int | None:
    """Participants in the distinct arms of one side (the largest n reported for each arm)."""
    largest: dict[object, float] = {}
    for record in records:
        if record.get(n) is not None:
            key = record.get(arm)
            largest[key] = max(largest.get(key, 0.0), float(record[n]))
    return int(sum(largest.values())) if largest else None


def _column(series: pd.Series) -> list:
    """A column's values as ``_plain`` makes them, whole numeric columns at once (a cell has hundreds)."""
    values = series.tolist()
    kind = series.dtype.kind
    if kind == "f":
        return [v if math.isfinite(v) else None for v in values]
    if kind in "iub":
        return values
    return [_plain(v) for v in values]


def _plain(value: object) -> object:
    """numpy scalars to Python; NaN/NA to None (JSON-safe)."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value
