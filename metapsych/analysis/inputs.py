"""A cell's trial-level inputs: one effect per trial after dependency handling, plus the cell's input hash.

Several effects of one trial in one cell (outcomes, time points, arms) are either aggregated within the
trial assuming a correlation rho between them (metafor's ``aggregate(..., struct="CS")``, metapsyTools'
"combined" model) or reduced to the first listed effect. ``inputs_sha256`` hashes every input row, the
settings and the metapsych version, so a cached cell result is reused only when nothing it depends on changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from metapsych import __version__
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

    @property
    def k(self) -> int:
        """Number of pooled effects (one per trial)."""
        return len(self.trials)


def cell_inputs(plan: CellPlan, config: Config) -> CellInputs:
    """Reduce a cell's rows to one effect per trial and hash the cell's inputs and settings."""
    rows = plan.rows.sort_values(["trial"], kind="stable")
    trials = tuple(sorted(rows["trial"].unique()))
    yi, vi = trial_effects(rows, trials, config.dependency.method, config.dependency.rho)
    info = tuple(_trial_info(group) for _, group in rows.groupby("trial", sort=True))
    return CellInputs(plan, trials, yi, vi, info, _participants(rows), _hash(plan, rows, config))


def trial_effects(rows: pd.DataFrame, trials: tuple[str, ...], method: str, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """One (yi, vi) per trial, in the order of ``trials``; rows must be sorted by trial (stable)."""
    if method == "first":
        first = rows.groupby("trial", sort=True).head(1)
        return first["yi"].to_numpy(dtype=float), first["vi"].to_numpy(dtype=float)
    from metapsych.stats.aggregate import aggregate

    codes = {t: i for i, t in enumerate(trials)}
    cluster = rows["trial"].map(codes).to_numpy()
    agg = aggregate(rows["yi"].to_numpy(dtype=float), rows["vi"].to_numpy(dtype=float), cluster, rho=rho)
    return np.asarray(agg.yi, dtype=float), np.asarray(agg.vi, dtype=float)


def _trial_info(group: pd.DataFrame) -> dict:
    first = group.iloc[0]
    info = {col: _plain(first.get(col)) for col in TRIAL_COLUMNS}
    info["comparator"] = info.pop("condition_arm2")
    info["n_effects"] = len(group)
    info["n_arm1"] = _arm_total(group, "arm1", "n_arm1")
    info["n_arm2"] = _arm_total(group, "arm2", "n_arm2")
    return info


def _arm_total(group: pd.DataFrame, arm: str, n: str) -> int | None:
    """Participants in the distinct arms of one side (largest n reported for each arm)."""
    if n not in group or group[n].isna().all():
        return None
    by_arm = group.groupby(arm)[n].max() if arm in group else group[n].max()
    return int(np.nansum(np.asarray(by_arm, dtype=float)))


def _participants(rows: pd.DataFrame) -> int:
    total = 0
    for _, group in rows.groupby("trial", sort=True):
        for arm, n in (("arm1", "n_arm1"), ("arm2", "n_arm2")):
            total += _arm_total(group, arm, n) or 0
    return total


def _hash(plan: CellPlan, rows: pd.DataFrame, config: Config) -> str:
    cols = [c for c in ROW_COLUMNS if c in rows]
    payload = {
        "version": __version__,
        "cell": [plan.id, plan.analysis, list(plan.subgroups), plan.min_studies],
        "settings": config.model_dump(mode="json", include={"effect", "model", "dependency", "bias_min_studies",
                                                            "sensitivity"}),
        "columns": cols,
        "rows": [[_hashable(v) for v in row] for row in rows[cols].itertuples(index=False, name=None)],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _hashable(value: object) -> object:
    value = _plain(value)
    return value.hex() if isinstance(value, float) else value


def _plain(value: object) -> object:
    """numpy scalars to Python; NaN/NA to None (JSON-safe)."""
    if value is None:
        return None
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
