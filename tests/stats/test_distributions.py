"""The scipy-free distribution functions agree with scipy.special (which agrees with R) to 1e-12."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from metapsych.stats import distributions as dist

DFS = [1, 2, 3, 4, 5, 7, 10, 17, 30, 50, 99, 250, 1000, 5000, 19999]


def _tol(df: float) -> float:
    """1e-11, looser for huge df where lgamma differences lose digits (still far below the 1e-6 parity)."""
    return 1e-11 if df <= 1000 else 1e-9


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = np.maximum(np.abs(b), 1e-300)
    return float(np.max(np.abs(a - b) / scale))


def test_normal() -> None:
    z = np.concatenate([np.linspace(-40, 40, 801), [0.0, 1e-8, 1.959963984540054]])
    moderate = np.abs(z) < 8
    assert _rel(dist.norm_two_sided_p(z[moderate]), 2 * special.ndtr(-np.abs(z[moderate]))) < 1e-13
    assert _rel(dist.norm_two_sided_p(z), 2 * special.ndtr(-np.abs(z))) < 1e-9  # far tails: both ~1e-300
    for alpha in (0.5, 0.1, 0.05, 0.01, 1e-5, 1e-12):
        assert _rel(dist.norm_crit(alpha), -special.ndtri(alpha / 2)) < 1e-14


@pytest.mark.parametrize("df", DFS)
def test_chi_square(df: int) -> None:
    x = df * np.concatenate([np.geomspace(1e-6, 0.9, 40), np.linspace(0.9, 1.1, 21), np.geomspace(1.1, 50, 40)])
    expected = special.chdtrc(df, x)
    keep = expected > 1e-290
    assert _rel(dist.chi2_sf(x[keep], df), expected[keep]) < _tol(df)
    for prob in (0.5, 0.025, 0.975, 0.05, 0.005, 1e-6):
        assert _rel(dist.chi2_upper_quantile(prob, df), special.chdtri(df, prob)) < 1e-11
        assert _rel(dist.chi2_lower_quantile(prob, df), special.chdtri(df, 1 - prob)) < 1e-10


@pytest.mark.parametrize("df", DFS + [0.5, 2.5])
def test_t(df: float) -> None:
    t = np.concatenate([np.linspace(0, 10, 101), np.geomspace(10, 1e6, 30)])
    expected = 2 * special.stdtr(df, -t)
    keep = expected > 1e-290
    assert _rel(dist.t_two_sided_p(t[keep], df), expected[keep]) < _tol(df)
    assert _rel(dist.t_two_sided_p(-t[keep], df), expected[keep]) < _tol(df)
    for alpha in (0.5, 0.1, 0.05, 0.01, 1e-4):
        assert _rel(dist.t_crit(alpha, df), -special.stdtrit(df, alpha / 2)) < _tol(df)


@pytest.mark.parametrize("df1,df2", [(1, 1), (1, 5), (2, 17), (3, 10), (5, 100), (12, 3), (40, 19999)])
def test_f(df1: int, df2: int) -> None:
    x = np.concatenate([np.geomspace(1e-6, 1, 30), np.geomspace(1, 1e5, 60)])
    expected = special.fdtrc(df1, df2, x)
    keep = expected > 1e-290
    assert _rel(dist.f_sf(x[keep], df1, df2), expected[keep]) < 1e-10


def test_infinities_and_nan() -> None:
    assert dist.t_two_sided_p(np.inf, 5) == 0.0
    assert dist.f_sf(np.inf, 1, 5) == 0.0 and dist.f_sf(0.0, 1, 5) == 1.0
    assert dist.chi2_sf(0.0, 3) == 1.0
    assert np.isnan(dist.chi2_sf(np.nan, 3))
    assert np.isnan(dist.chi2_lower_quantile(0.5, 0)) and np.isnan(dist.t_crit(0.05, 0))


@pytest.mark.parametrize("size", [1, 5, 40])
def test_scalar_and_array_paths_agree(size: int) -> None:
    x = np.linspace(0.5, 60, size)
    assert _rel(dist.chi2_sf(x, 7), special.chdtrc(7, x)) < 1e-11
    assert _rel(dist.t_two_sided_p(x / 10, 7), 2 * special.stdtr(7, -x / 10)) < 1e-11
    assert _rel(dist.f_sf(x / 10, 2, 7), special.fdtrc(2, 7, x / 10)) < 1e-10


def test_effect_size_helpers_match_scipy() -> None:
    """The quantities effects/ needs (t from a p-value, normal cdf and quantile, lgamma) without scipy."""
    from scipy import stats

    p = np.array([1e-12, 1e-6, 0.001, 0.05, 0.5, 0.99])
    for df in (3, 20, 250):
        assert _rel(dist.t_from_two_sided_p(p, df), stats.t.isf(p / 2, df)) < 1e-10
    assert dist.t_from_two_sided_p([1.0, 0.0], 10).tolist() == [0.0, float("inf")]
    assert np.isnan(dist.t_from_two_sided_p([0.05, 1.5], [0, 10])).all()
    x = np.linspace(-30, 8, 200)
    assert _rel(dist.norm_cdf(x), special.ndtr(x)) < 1e-12
    assert abs(dist.norm_quantile(0.2) - stats.norm.ppf(0.2)) < 1e-14
    g = np.array([0.5, 1.5, 7.25, 400.5, 1e5, -2.5])
    assert _rel(dist.log_gamma(g), special.gammaln(g)) < 1e-13
    assert np.isnan(dist.log_gamma([0.0, -3.0, np.nan])).all()


def test_t_quantile_far_in_the_tail_matches_r() -> None:
    """p-values far below any a trial reports (an effect from ``p_value``): Newton steps in t crept there
    and stopped 400 steps short (p = 1e-200, df 38 gave 1,002,302); the least positive double crashed.
    R 4.2: ``format(qt(p / 2, df, lower.tail = FALSE), digits = 17)``."""
    cases = [(1e-200, 38, 1070550.9994229805), (1e-200, 2, 1e100), (1e-300, 38, 458338467.83851147),
             (1e-250, 198, 253.51084585382154), (1e-100, 38, 2500.5015446463526)]
    for p, df, expected in cases:
        assert _rel(dist.t_from_two_sided_p(p, df), expected) < 1e-12, (p, df)
    assert np.isfinite(dist.t_from_two_sided_p(5e-324, 38))  # R: Inf, as p / 2 rounds to 0 there
    assert dist.t_from_two_sided_p(1e-320, 2) == np.inf  # t^2 beyond the doubles (R: Inf)


def test_a_value_does_not_depend_on_the_array_it_is_asked_for_in() -> None:
    """The scalar and lock-step algorithms give the same bits, so a cell's p-values and intervals are the
    same whether it was fitted alone (an incremental run) or with hundreds of others (a cold run)."""
    rng = np.random.default_rng(3)
    t = rng.standard_normal(200) * rng.choice([0.1, 1.0, 3.0, 30.0], 200)
    df = rng.choice([1.0, 2.5, 4.0, 19.0, 259.0], 200)
    alone = [float(dist.t_two_sided_p(a, b)) for a, b in zip(t, df)]
    assert dist.t_two_sided_p(t, df).tolist() == alone
    x, d1, d2 = np.abs(t), rng.choice([1.0, 3.0], 200), rng.choice([5.0, 40.0], 200)
    assert dist.f_sf(x, d1, d2).tolist() == [float(dist.f_sf(a, b, c)) for a, b, c in zip(x, d1, d2)]
    assert dist.chi2_sf(x * 5, d1).tolist() == [float(dist.chi2_sf(a, b)) for a, b in zip(x * 5, d1)]
    for dfs in ([1.0, 2.0, 3.0, 8.0, 19.0, 250.0], [2.0, 8.0], [19.0]):  # parities mixed or not, one df or many
        d = rng.choice(dfs, 200)
        assert dist.chi2_sf(x * 5, d).tolist() == [float(dist.chi2_sf(a, b)) for a, b in zip(x * 5, d)], dfs
    alphas = rng.choice([0.05, 0.01, 0.1], 40)
    dfs = rng.choice(np.arange(1.0, 300.0), 40)
    together = dist.t_from_two_sided_p(alphas, dfs).tolist()
    dist._T_QUANTILES.clear()
    assert [float(dist.t_from_two_sided_p(a, b)) for a, b in zip(alphas, dfs)] == together
