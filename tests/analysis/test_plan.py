"""The grid: which cells a config asks for, their ids, orientation, and overlap checks."""

from __future__ import annotations

import pandas as pd
import pytest

from metapsych.analysis.config import Config
from metapsych.analysis.plan import CELL_ID, plan_cells
from metapsych.errors import ConfigError


def table(rows: list[tuple]) -> pd.DataFrame:
    cols = ["trial", "condition", "condition_arm1", "condition_arm2", "kind_arm2", "time", "yi", "vi", "arm1", "arm2"]
    return pd.DataFrame([(*r, "a", "b") for r in rows], columns=cols)


ROWS = [
    ("t1", "depression", "cbt", "waitlist", "control", "post", 0.5, 0.04),
    ("t2", "depression", "cbt", "care-as-usual", "control", "post", 0.3, 0.05),
    ("t3", "depression", "cbt", "waitlist", "control", "follow-up", 0.2, 0.06),
    ("t4", "depression", "pst", "cbt", "active", "post", 0.1, 0.05),
    ("t5", "depression", "cbt", "pst", "active", "post", 0.2, 0.05),
    ("t6", "ptsd", "cbt", "pharmacotherapy", "pharmacotherapy", "post", 0.0, 0.05),
    ("t7", "ptsd", "cbt", "waitlist", "control", "post", float("nan"), None),
]


def config(*analyses: dict) -> Config:
    return Config.model_validate({"analyses": list(analyses)})


def test_grid_of_each_control_all_controls_and_head_to_head() -> None:
    cells = plan_cells(table(ROWS), config({"name": "a", "comparators": "each-control"},
                                          {"name": "b", "comparators": "all-controls", "time": ["post"]},
                                          {"name": "c", "comparators": "head-to-head"}))
    ids = [c.id for c in cells]
    assert ids == sorted(ids)
    assert ids == ["depression.cbt.vs.all-controls.post", "depression.cbt.vs.care-as-usual.post",
                   "depression.cbt.vs.pst.post", "depression.cbt.vs.waitlist.follow-up",
                   "depression.cbt.vs.waitlist.post", "ptsd.cbt.vs.pharmacotherapy.post"]
    assert all(CELL_ID.match(i) for i in ids)
    pooled = cells[0]
    assert (pooled.comparator, pooled.analysis, pooled.n_trials) == ("all-controls", "b", 2)


def test_head_to_head_pairs_are_oriented_alphabetically_with_flipped_sign() -> None:
    (cell, _) = plan_cells(table(ROWS), config({"name": "h", "comparators": "head-to-head"}))
    assert (cell.approach, cell.comparator) == ("cbt", "pst")
    flipped = cell.rows.set_index("trial")
    assert flipped.loc["t4", "yi"] == -0.1 and flipped.loc["t5", "yi"] == 0.2
    assert (flipped.loc["t4", "condition_arm1"], flipped.loc["t4", "arm1"]) == ("cbt", "b")


def test_filters_and_unusable_rows() -> None:
    cells = plan_cells(table(ROWS), config({"name": "a", "comparators": "each-control", "controls": ["waitlist"],
                                            "time": ["post"], "conditions": ["depression", "ptsd"]}))
    assert [c.id for c in cells] == ["depression.cbt.vs.waitlist.post"]


def test_outcome_filters() -> None:
    rows = table(ROWS).assign(instrument=["bdi-ii", "hdrs-17", "bdi-ii", "bdi-ii", "bdi-ii", "phq-9", "bdi-ii"],
                              rating=["self-report", "clinician", None, None, None, None, None])
    cells = plan_cells(rows, config({"name": "a", "comparators": "all-controls", "instruments": ["bdi-ii"]}))
    assert [(c.id, c.n_trials) for c in cells] == [("depression.cbt.vs.all-controls.follow-up", 1),
                                                   ("depression.cbt.vs.all-controls.post", 1)]
    cells = plan_cells(rows, config({"name": "a", "comparators": "all-controls", "ratings": ["clinician"]}))
    assert [(c.id, c.n_trials) for c in cells] == [("depression.cbt.vs.all-controls.post", 1)]


def test_two_analyses_claiming_one_cell_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="both produce cell depression.cbt.vs."):
        plan_cells(table(ROWS), config({"name": "a", "comparators": "each-control"},
                                       {"name": "b", "comparators": "each-control", "time": ["post"]}))


def test_cell_rows_are_the_groups_of_the_analysis_rows_and_keys_follow_every_input_value() -> None:
    from metapsych.analysis.inputs import cell_key

    rows = table(ROWS + [("t8", "depression", "cbt", "waitlist", "control", "post", 0.4, 0.03),
                         ("t9", "depression", None, "waitlist", "control", "post", 0.4, 0.03)])
    settings = config({"name": "a", "comparators": "each-control"})
    cells = plan_cells(rows, settings)
    usable = rows[rows["vi"] > 0]
    expected = usable[usable["kind_arm2"] == "control"].groupby(["condition", "condition_arm1", "condition_arm2",
                                                                 "time"], sort=True)
    assert len(cells) == expected.ngroups
    for cell, (key, group) in zip(cells, expected):
        assert (cell.condition, cell.approach, cell.comparator, cell.time) == key
        pd.testing.assert_frame_equal(cell.rows, group, check_exact=True)
    keys = [cell_key(c, settings) for c in cells]
    assert keys == [cell_key(c, settings) for c in plan_cells(rows.copy(), settings)]
    changed = rows.assign(vi=rows["vi"].where(rows["trial"] != "t8", 0.031))
    assert [a == b for a, b in zip(keys, [cell_key(c, settings) for c in plan_cells(changed, settings)])] == [
        c.id != "depression.cbt.vs.waitlist.post" for c in cells]
