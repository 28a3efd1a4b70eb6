"""Q-profile CIs for tau^2, tau, I^2 and H^2 against metafor's confint() for every estimator."""

from __future__ import annotations

import math

import pytest

from metapsych.stats.heterogeneity import confint_tau2
from metapsych.stats.rma import fit

from .oracle import assert_close, load_json, yi_vi

DATASETS = ["bcg", "normand", "thirdwave", "suicideprevention", "random_mods", "edge_k2", "edge_identical",
            "edge_extreme", "edge_varrange", "edge_subgroup_single", "thirdwave_level90"]


@pytest.mark.parametrize("name", DATASETS)
def test_qprofile(name: str) -> None:
    ref = load_json(name)
    source = "thirdwave" if name == "thirdwave_level90" else name
    yi, vi = yi_vi(source)
    level = ref["meta"]["level"] / 100
    checked = 0
    for key, block in ref["confint"].items():
        if key.endswith("_PL") or "error" in block:
            continue
        res = fit(yi, vi, estimator=key, level=level)
        ci = confint_tau2(yi, vi, res)
        for ours, theirs in (("tau2", "tau2"), ("tau", "tau"), ("I2", "I2"), ("H2", "H2")):
            assert_close(f"{name}/{key} {ours} lb", getattr(ci, f"{ours}_lower"), block[theirs]["ci.lb"])
            assert_close(f"{name}/{key} {ours} ub", getattr(ci, f"{ours}_upper"), block[theirs]["ci.ub"])
        assert ci.ci_null == block["ci.null"]
        assert (ci.lb_sign, ci.ub_sign) == (block["lb.sign"], block["ub.sign"])
        checked += 1
    assert checked >= 9


def test_not_estimable_cases_are_labelled() -> None:
    yi, vi = yi_vi("edge_k1")
    ci = confint_tau2(yi, vi, fit(yi, vi))
    assert math.isnan(ci.tau2_lower) and "not estimable" in ci.message
    yi, vi = yi_vi("bcg")
    assert "common-effect" in confint_tau2(yi, vi, fit(yi, vi, estimator="EE")).message


def test_book_thirdwave_interval() -> None:
    """Harrer et al. (2021): tau^2 = 0.0820 [0.0295; 0.3533], tau = 0.2863 [0.1717; 0.5944]."""
    yi, vi = yi_vi("thirdwave")
    ci = confint_tau2(yi, vi, fit(yi, vi, estimator="REML", test="knha"))
    assert (round(ci.tau2_lower, 4), round(ci.tau2_upper, 4)) == (0.0295, 0.3533)
    assert (round(ci.tau_lower, 4), round(ci.tau_upper, 4)) == (0.1717, 0.5944)
