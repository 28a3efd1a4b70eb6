"""Exporting trials back to Metapsy rows: one row per comparison x outcome, with the database's own codes
(``original_code`` and ``multi_arm`` of the arms) where the trial was imported, so that importing a
database and exporting it gives back the same comparisons."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metapsych.data.table import comparison_table

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.data.load import Trials

EXPORT_COLUMNS = [
    "study", "condition_arm1", "condition_arm2", "multi_arm1", "multi_arm2", "outcome_type", "instrument",
    "time", "time_weeks", "rating", "mean_arm1", "sd_arm1", "n_arm1", "mean_arm2", "sd_arm2", "n_arm2",
    "mean_change_arm1", "sd_change_arm1", "n_change_arm1", "mean_change_arm2", "sd_change_arm2", "n_change_arm2",
    "event_arm1", "event_arm2", "totaln_arm1", "totaln_arm2", "precalc_g", "precalc_g_se",
    "rand_arm1", "rand_arm2", "year", "country", "rob", "trial",
]


def export_metapsy(trials: Trials) -> pd.DataFrame:
    """Metapsy-format rows of the trials (``precalc_g`` oriented: positive = arm 1 better)."""
    table = comparison_table(trials)
    codes: dict[tuple[str, str], tuple[str, str | None]] = {}
    studies: dict[str, str] = {}
    for loaded in trials:
        trial = loaded.trial
        studies[trial.id] = trial.source.study if trial.source and trial.source.study else trial.label
        for arm in trial.arms:
            codes[(trial.id, arm.id)] = (arm.original_code or arm.approach, arm.multi_arm)
    frame = table.copy()
    frame["study"] = frame["trial"].map(studies)
    for i in (1, 2):
        keys = list(zip(frame["trial"], frame[f"arm{i}"]))
        frame[f"condition_arm{i}"] = [codes[k][0] for k in keys]
        frame[f"multi_arm{i}"] = [codes[k][1] for k in keys]
    frame["outcome_type"] = frame["outcome_label"].where(frame["outcome_label"].notna(), frame["outcome_type"])
    return frame.reindex(columns=EXPORT_COLUMNS)
