"""sensitivity_table: rows as metapsyTools defines them, parity with metafor/clubSandwich, edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from metapsych.analysis.sensitivity import ROWS, sensitivity_table
from metapsych.stats.aggregate import aggregate
from metapsych.stats.rma import fit
from robustness_ref import assert_close, load_csv, load_json


@pytest.fixture(scope="module")
def chernobyl_rows() -> dict[str, dict]:
    d = load_csv("chernobyl")
    rob = [i % 3 == 0 for i in range(d["yi"].size)]
    rows = sensitivity_table(d["yi"], d["vi"], d["study"], rob, estimator="REML", test="knha", level=0.95)
    json.dumps(rows, allow_nan=False)
    return {r["model"]: r for r in rows}


def test_rows_in_order_with_all_keys(chernobyl_rows) -> None:
    assert tuple(chernobyl_rows) == ROWS
    for row in chernobyl_rows.values():
        assert {"k", "estimate", "se", "ci_lower", "ci_upper", "p_value", "tau2", "I2", "I2_ci", "pi_lower",
                "pi_upper", "nnt", "message"} <= set(row)


def test_overall_matches_metafor_knha(chernobyl_rows) -> None:
    ref = load_json("chernobyl.metafor.json")
    knha, ci, pred = ref["knha"]["REML"], ref["confint"]["REML"]["I2"], ref["predict"]["REML_knha"]
    row = chernobyl_rows["overall"]
    assert_close([row["estimate"], row["se"], row["ci_lower"], row["ci_upper"], row["p_value"], row["tau2"]],
                 [knha["b"], knha["se"], knha["ci.lb"], knha["ci.ub"], knha["pval"], knha["tau2"]])
    assert_close(row["I2_ci"], [ci["ci.lb"], ci["ci.ub"]])
    assert_close([row["pi_lower"], row["pi_upper"]], [pred["pi.lb"], pred["pi.ub"]])


def test_combined_lowest_highest(chernobyl_rows) -> None:
    d = load_csv("chernobyl")
    ya, va, _ = aggregate(d["yi"], d["vi"], d["study"], rho=0.6)
    assert_close(chernobyl_rows["combined"]["estimate"], fit(ya, va, test="knha").estimate, rtol=1e-12)
    assert chernobyl_rows["lowest"]["k"] == chernobyl_rows["highest"]["k"] == 14
    assert chernobyl_rows["lowest"]["estimate"] < chernobyl_rows["combined"]["estimate"]
    assert chernobyl_rows["highest"]["estimate"] > chernobyl_rows["combined"]["estimate"]


def test_low_rob_and_outliers(chernobyl_rows) -> None:
    assert chernobyl_rows["low_rob"]["k"] == 11
    assert chernobyl_rows["outliers_removed"]["k"] < 33
    assert "outliers removed" in chernobyl_rows["outliers_removed"]["message"]


def test_three_level_z_matches_refined_rma_mv() -> None:
    d = load_csv("chernobyl")
    ref = load_json("chernobyl.rma_mv.json")["three_level_refined"]
    rows = {r["model"]: r for r in sensitivity_table(d["yi"], d["vi"], d["study"], None, estimator="REML",
                                                     test="z", level=0.95)}
    row = rows["three_level"]
    assert_close([row["estimate"], row["se"], row["ci_lower"], row["ci_upper"]],
                 [ref["b"], ref["se"], ref["ci.lb"], ref["ci.ub"]])
    assert_close(row["tau2"], sum(ref["sigma2"]), rtol=1e-7)
    assert rows["low_rob"]["message"] == "no risk-of-bias ratings"


@pytest.mark.parametrize("name", ["chernobyl", "clustered_random"])
def test_che_matches_metapsytools_recipe(name: str) -> None:
    """CHE (CS rho = 0.6) + CR2/Satterthwaite against rma.mv (optim BFGS) and clubSandwich, to 1e-5
    (R's optimiser stops ~1e-8 short in sigma2)."""
    d = load_csv(name)
    ref = load_json(f"{name}.che.json")["t"]
    rows = {r["model"]: r for r in sensitivity_table(d["yi"], d["vi"], d["study"], None, estimator="REML",
                                                     test="knha", level=0.95)}
    row = rows["three_level_che"]
    assert row["test"] == "CR2"
    assert_close([row["estimate"], row["se"], row["df"], row["p_value"], row["ci_lower"], row["ci_upper"]],
                 [ref["b"], ref["cr2_se"], ref["cr2_df"], ref["cr2_p"], ref["cr2_ci_lb"], ref["cr2_ci_ub"]],
                 rtol=1e-5)


def test_every_effect_an_outlier() -> None:
    y = np.array([-2.0, -2.1, -1.9, 2.0, 2.1, 1.9])
    rows = {r["model"]: r for r in sensitivity_table(y, np.full(6, 0.001), list("abcdef"), [True] * 6,
                                                     estimator="REML", test="z", level=0.95)}
    row = rows["outliers_removed"]
    assert row["estimate"] is None and "too few remain" in row["message"]
    assert rows["three_level"]["message"] is None


def test_single_trial_cell() -> None:
    rows = {r["model"]: r for r in sensitivity_table([0.2, 0.4, 0.3], [0.02, 0.03, 0.02], ["t1"] * 3, None,
                                                     estimator="REML", test="knha", level=0.95)}
    json.dumps(list(rows.values()), allow_nan=False)
    assert rows["overall"]["k"] == 3
    assert rows["combined"]["estimate"] is None and "too few" in rows["combined"]["message"]
    assert "at least 2 trials" in rows["three_level_che"]["message"]


def test_changed_conclusions() -> None:
    from metapsych.analysis.sensitivity import changed_conclusions, conclusion

    main = {"ci_lower": 0.1, "ci_upper": 0.5}
    rows = [{"model": "overall", "ci_lower": 0.2, "ci_upper": 0.6},
            {"model": "low_rob", "ci_lower": -0.1, "ci_upper": 0.4},
            {"model": "three_level", "ci_lower": None, "ci_upper": None},
            {"model": "highest", "ci_lower": -0.9, "ci_upper": -0.2}]
    assert conclusion(rows[3]) == "harms"
    assert changed_conclusions(main, rows) == ["low_rob", "highest"]
    assert changed_conclusions({"ci_lower": None, "ci_upper": None}, rows) == []
