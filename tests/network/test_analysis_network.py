"""analysis.network: contrasts per condition, multi-arm completion by stats.network_data, payload keys."""

from __future__ import annotations

import pandas as pd
import pytest

from metapsych.analysis.config import Config
from metapsych.analysis.network import contrasts, network_results

CONFIG = Config.model_validate({"analyses": [{"name": "main", "comparators": "each-control"}]})


def _rows() -> pd.DataFrame:
    """Two two-arm trials and one three-arm trial reported against its shared control only."""
    return pd.DataFrame({
        "trial": ["t1", "t2", "t3", "t3", "t4"],
        "condition": "depression",
        "time": "post",
        "condition_arm1": ["cbt", "ipt", "cbt", "ipt", "cbt"],
        "condition_arm2": ["care-as-usual", "care-as-usual", "care-as-usual", "care-as-usual", "ipt"],
        "yi": [0.5, 0.4, 0.6, 0.3, 0.2],
        "vi": [0.04, 0.05, 0.045, 0.05, 0.06],
        "n_arm1": [50, 40, 45, 40, 35],
        "n_arm2": [50, 40, 44, 44, 35],
    })


def test_three_arm_trial_is_completed_by_the_stats_helper() -> None:
    data, notes = contrasts(_rows(), CONFIG)
    t3 = [(a, b, y, v) for s, a, b, y, v in zip(data["study"], data["treat1"], data["treat2"], data["yi"], data["vi"])
          if s == "t3"]
    assert [(a, b) for a, b, _, _ in t3] == [("care-as-usual", "cbt"), ("care-as-usual", "ipt"), ("cbt", "ipt")]
    assert t3[2][2] == pytest.approx(0.6 - 0.3)
    shared = (0.045 * (1 / 44) / (1 / 45 + 1 / 44) + 0.05 * (1 / 44) / (1 / 40 + 1 / 44)) / 2
    assert t3[2][3] == pytest.approx(0.045 + 0.05 - 2 * shared)
    assert len(notes) == 1 and "t3" in notes[0]


def test_payload_names_split_rows_and_keeps_the_completion_note() -> None:
    payload = network_results(_rows(), CONFIG)["depression"]
    assert payload["multi_arm_studies"] == ["t3"]
    assert any("t3" in note for note in payload["notes"])
    assert all(row["comparison"] == f"{row['treat1']}:{row['treat2']}" for row in payload["split"])


def test_split_by_format_makes_approach_format_treatments() -> None:
    rows = _rows().assign(format=["group", "individual", "individual", "group", "group"],
                          format_arm2=[None, None, None, None, "individual"])
    split = Config.model_validate({"analyses": [{"name": "main", "comparators": "each-control"}],
                                   "network": {"split_by_format": True}})
    data, _ = contrasts(rows, split)
    pairs = {(s, a, b) for s, a, b in zip(data["study"], data["treat1"], data["treat2"])}
    assert ("t1", "care-as-usual", "cbt/group") in pairs
    assert ("t4", "cbt/group", "ipt/individual") in pairs
    assert ("t3", "cbt/individual", "ipt/group") in pairs  # completed three-arm contrast, formats kept
    plain, _ = contrasts(rows, CONFIG)
    assert set(plain["treat1"]) | set(plain["treat2"]) == {"care-as-usual", "cbt", "ipt"}
