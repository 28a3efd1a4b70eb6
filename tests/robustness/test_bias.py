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


KENDALL = load_json("kendall_large.json")  # Rscript tests/fixtures/robustness/kendall_large.R


@pytest.mark.parametrize("name", ["n150_null", "n160_strong", "n120_negative", "n600_normal"])
def test_kendall_test_at_larger_n_matches_cor_test(name: str) -> None:
    """Exact p-values where R still computes them (n <= 170), the normal approximation beyond the exact limit."""
    case = KENDALL[name]
    r = bias.kendall_test(np.array(case["x"]), np.array(case["y"]))
    assert r.exact == case["exact"]
    assert_close([r.tau, r.p_value], [case["tau"], case["pval"]], rtol=1e-9)


def test_kendall_exact_p_where_r_overflows() -> None:
    """R's exact p is NaN from n = 171 (n! overflows); here it is a probability close to the normal one."""
    case = KENDALL["n300_exact_nan"]
    x, y = np.array(case["x"]), np.array(case["y"])
    r = bias.kendall_test(x, y)
    assert r.exact and case["pval"] == "NaN"  # jsonlite writes R's NaN as a string
    assert r.tau == pytest.approx(case["tau"], rel=1e-12)
    n = x.size
    z = r.tau * (n * (n - 1) / 2) / np.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    assert r.p_value == pytest.approx(float(bias.dist.norm_two_sided_p(z)), rel=0.02)


def _permutations_by_inversions(n: int) -> list[int]:
    """Mahonian numbers: how many permutations of n have 0, 1, 2, ... inversions (exact integers)."""
    counts = [1]
    for i in range(2, n + 1):
        prefix = [0]
        for c in counts:
            prefix.append(prefix[-1] + c)
        size = len(counts) + i - 1
        counts = [prefix[min(j, len(counts) - 1) + 1] - prefix[max(j - i + 1, 0)] for j in range(size)]
    return counts


@pytest.mark.parametrize("n", [2, 3, 7, 8, 9, 16, 25, 40])
def test_kendall_lower_tail_equals_exact_counts(n: int) -> None:
    """The lower half of the null distribution, to full precision down to the far tail (1 / n!)."""
    from fractions import Fraction
    from math import factorial

    counts = _permutations_by_inversions(n)
    cdf = bias._kendall_lower_cdf(n)
    assert cdf.size == n * (n - 1) // 4 + 1
    total = 0
    for q, value in enumerate(cdf):
        total += counts[q]
        exact = Fraction(total, factorial(n))
        assert value == pytest.approx(float(exact), rel=1e-13)


def test_kendall_s_in_blocks_equals_all_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    a = np.round(rng.normal(size=301), 1)  # ties in both
    b = np.round(rng.normal(size=301), 1)
    pairs = np.sign(a[:, None] - a[None, :]) * np.sign(b[:, None] - b[None, :])
    expected = float(np.triu(pairs, 1).sum())
    for block in (1, 300, 1000, 1 << 21):
        monkeypatch.setattr(bias, "KENDALL_PAIRS_PER_BLOCK", block)
        assert bias._kendall_s(a, b) == expected


@pytest.mark.parametrize("a,b", [([1, 1, 1], [2, 2, 2]), ([1, 2, 3, 4], [2, 2, 2, 2]), ([3, 3], [1, 2])])
def test_kendall_test_of_a_constant_variable_is_not_available(a: list, b: list) -> None:
    """cor.test(a, b, method = "kendall") gives NA for tau and p when a variable has one value (p was 1 here
    when both had)."""
    r = bias.kendall_test(np.array(a, float), np.array(b, float))
    assert np.isnan(r.tau) and np.isnan(r.p_value)


def test_r0_with_identical_effects_fills_nothing() -> None:
    """Three identical effects: metafor 3.8-1 ``trimfill(rma(yi, vi), estimator = "R0")`` gives k0 = 0, side
    right, se 1.414214; the run of positive ranks counted the zero residuals and the trimming did not converge."""
    y = np.full(3, -6.457803732489293)
    v = np.array([518.7685060389285, 232.43280234243534, 336.11220723321895])
    found = bias.trimfill(y, v, estimator="REML", k0_estimator="R0")
    assert (found.k0, found.side) == (0, "right") and found.se_k0 == pytest.approx(2**0.5)
