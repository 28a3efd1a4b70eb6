"""Publication-bias statistics against metafor regtest / ranktest / trimfill / fsn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metapsych.stats import bias
from robustness_ref import assert_close, load_csv, load_json

NAMES = ["bcg", "thirdwave", "random14", "symmetric12"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("estimator,key", [("REML", "rma_REML_sei"), ("DL", "rma_DL_sei"), ("EE", "rma_EE_sei")])
def test_regtest(name: str, estimator: str, key: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.metafor.json")["regtest"][key]
    r = bias.regtest(d["yi"], d["vi"], estimator=estimator)
    assert_close([r.statistic, r.p_value, r.limit_estimate, r.limit_ci_lower, r.limit_ci_upper],
                 [ref["zval"], ref["pval"], ref["est"], ref["ci.lb"], ref["ci.ub"]], atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_regtest_knha(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.metafor.json")["regtest"]["rma_REML_knha_sei"]
    r = bias.regtest(d["yi"], d["vi"], test="knha")
    assert r.df == ref["df"]
    assert_close([r.statistic, r.p_value, r.limit_estimate], [ref["zval"], ref["pval"], ref["est"]], atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_ranktest(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.metafor.json")["ranktest"]["REML"]
    r = bias.ranktest(d["yi"], d["vi"])
    assert_close([r.tau, r.p_value], [ref["tau"], ref["pval"]], rtol=1e-9)
    assert r.exact == ("warnings" not in ref)


@pytest.mark.parametrize("name", NAMES)
def test_fail_safe_n(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.metafor.json")["fsn"]
    f = bias.fail_safe_n(d["yi"], d["vi"])
    assert f.rosenthal == ref["Rosenthal"]["fsnum"]
    assert f.orwin == ref["Orwin"]["fsnum"]
    assert_close([f.rosenthal_p, f.orwin_target], [ref["Rosenthal"]["pval"], ref["Orwin"]["target"]])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("estimator,k0_est,key", [("REML", "L0", "REML_L0"), ("REML", "R0", "REML_R0"),
                                                  ("DL", "L0", "DL_L0"), ("EE", "L0", "EE_L0"), ("EE", "R0", "EE_R0")])
def test_trimfill(name: str, estimator: str, k0_est: str, key: str) -> None:
    d = load_csv(name)
    full = load_json(f"{name}.metafor.json")
    ref = full["trimfill"][key]
    t = bias.trimfill(d["yi"], d["vi"], estimator=estimator, k0_estimator=k0_est)
    assert t.k0 == ref["k0"]
    if abs(full["regtest"]["rma_REML_sei"]["zval"]) > 1e-8:  # symmetric12: the slope is 0 up to rounding
        assert t.side == ref["side"]
        assert_close(t.se_k0, ref["se.k0"])
    assert list(t.filled) == ref["fill"]
    assert_close(t.yi, ref["yi"], rtol=1e-10)
    assert_close([t.fit.estimate, t.fit.se[0], t.fit.ci_lower[0], t.fit.ci_upper[0], t.fit.p_value[0], t.fit.Q],
                 [ref["b"], ref["se"], ref["ci.lb"], ref["ci.ub"], ref["pval"], ref["QE"]])
    assert_close(t.fit.tau2, ref["tau2"], atol=1e-10)


def test_trimfill_fills_something_and_nothing() -> None:
    bcg = load_csv("bcg")
    sym = load_csv("symmetric12")
    assert bias.trimfill(bcg["yi"], bcg["vi"]).k0 == 1
    nothing = bias.trimfill(sym["yi"], sym["vi"])
    assert nothing.k0 == 0 and not nothing.filled.any() and nothing.yi.size == 12


def test_pet_peese_against_weighted_lm() -> None:
    """PET's intercept equals metafor's classical Egger (lm) limit estimate."""
    d = load_csv("thirdwave")
    ref = load_json("thirdwave.metafor.json")["regtest"]["lm_sei"]
    pp = bias.pet_peese(d["yi"], d["vi"])
    assert_close([pp.pet_estimate, pp.pet_ci_lower, pp.pet_ci_upper], [ref["est"], ref["ci.lb"], ref["ci.ub"]])
    assert pp.chosen in ("PET", "PEESE")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=3, max_size=9, unique=True))
def test_kendall_exact_p_is_a_probability_and_symmetric(values) -> None:
    a = np.array(values)
    b = np.arange(a.size, dtype=float)
    r1 = bias.kendall_test(a, b)
    r2 = bias.kendall_test(-a, b)
    assert 0 <= r1.p_value <= 1
    assert r1.tau == pytest.approx(-r2.tau)
    assert r1.p_value == pytest.approx(r2.p_value)


def test_equal_standard_errors_give_a_clear_error() -> None:
    y, v = np.array([0.1, 0.3, 0.2, 0.5]), np.full(4, 0.04)
    with pytest.raises(ValueError, match="different standard errors"):
        bias.trimfill(y, v)
    with pytest.raises(ValueError, match="different standard errors"):
        bias.regtest(y, v)


def test_trimfill_with_nothing_to_fill_returns_the_knha_fit() -> None:
    """metafor: trimfill(rma(..., test="knha")) with k0 = 0 is the original (knha) fit; with k0 > 0 a z refit."""
    d = load_csv("thirdwave")
    ref = load_json("thirdwave.metafor.json")["knha"]["REML"]
    t = bias.trimfill(d["yi"], d["vi"], test="knha")
    assert t.k0 == 0 and t.fit.test == "knha"
    assert_close([t.fit.ci_lower[0], t.fit.ci_upper[0]], [ref["ci.lb"], ref["ci.ub"]])
    bcg = load_csv("bcg")
    filled = bias.trimfill(bcg["yi"], bcg["vi"], test="knha")
    assert filled.k0 == 1 and filled.fit.test == "z"
