"""Property tests: invariances the robustness statistics must have whatever the data."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from metapsych.stats.bias import ranktest, trimfill
from metapsych.stats.influence import case_diagnostics
from metapsych.stats.multilevel import fit_three_level

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def meta_data(draw, min_k: int = 4, max_k: int = 12):
    k = draw(st.integers(min_k, max_k))
    y = np.array(draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=k, max_size=k)))
    v = np.array(draw(st.lists(st.floats(0.005, 0.5), min_size=k, max_size=k)))
    return y, v


@SETTINGS
@given(meta_data())
def test_leave_one_out_common_effect_is_the_weighted_mean_without_i(data) -> None:
    y, v = data
    loo = case_diagnostics(y, v, estimator="EE").leave_one_out
    w = 1 / v
    expected = [(np.sum(w * y) - w[i] * y[i]) / (np.sum(w) - w[i]) for i in range(y.size)]
    np.testing.assert_allclose(loo.estimate, expected, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(meta_data(min_k=5), st.floats(-3, 3))
def test_ranktest_ignores_a_shift(data, shift) -> None:
    y, v = data
    # effects (or variances: 0.5 and 0.49999999999999994) that differ below the shift's rounding would
    # become ties after it, or change order
    y, v = np.round(y, 6), np.round(v, 6)
    # An effect equal to the pooled estimate standardises to 0, a tie with every other such effect; after
    # the shift its residual is rounding noise of either sign (in R as here), so the ties come undone.
    assume(np.all(np.abs(y - np.sum(y / v) / np.sum(1 / v)) > 1e-9))
    a, b = ranktest(y, v), ranktest(y + shift, v)
    assert abs(a.tau - b.tau) < 1e-9 or (np.isnan(a.tau) and np.isnan(b.tau))


@SETTINGS
@given(meta_data(min_k=6))
def test_trimfill_mirrors(data) -> None:
    y, v = data
    assume(np.ptp(v) > 1e-3)
    a, b = trimfill(y, v, estimator="DL"), trimfill(-y, v, estimator="DL")
    assume(abs(a.fit.estimate) > 1e-6)
    slope_z = abs(__import__("metapsych.stats.bias", fromlist=["regtest"]).regtest(y, v, estimator="DL").statistic)
    assume(slope_z > 1e-6)
    assert a.k0 == b.k0
    assert {a.side, b.side} == {"left", "right"}
    np.testing.assert_allclose(a.fit.estimate, -b.fit.estimate, rtol=1e-6, atol=1e-9)


@SETTINGS
@given(meta_data(min_k=4), st.integers(2, 4))
def test_three_level_without_variance_is_the_common_effect(data, n_clusters) -> None:
    y, v = data
    cluster = [i % n_clusters for i in range(y.size)]
    f = fit_three_level(y, v, cluster, sigma2=[0.0, 0.0])
    np.testing.assert_allclose(f.estimate, np.sum(y / v) / np.sum(1 / v), rtol=1e-10, atol=1e-15)
    g = fit_three_level(y, v, cluster)
    assert g.converged and np.all(g.sigma2 >= 0)
    # No claim that g.loglik >= f.loglik: the REML likelihood can have an interior local maximum below its
    # value at sigma2 = 0 (y = 0, 1, -1.375, 0; v = 1/128, 1/4, 3/8, 1/32; two clusters: -3.8048 at sigma2 =
    # (0.118, 0.326) vs -3.7997), and metafor's nlminb stops at that same maximum.


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meta_data(min_k=1, max_k=12), st.integers(1, 5), st.booleans())
def test_payload_and_table_never_raise_and_are_json_safe(data, n_clusters, knha) -> None:
    import json
    import warnings

    from metapsych.analysis.diagnostics import diagnostics_payload
    from metapsych.analysis.sensitivity import sensitivity_table

    y, v = data
    cluster = [f"c{i % n_clusters}" for i in range(y.size)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        payload = diagnostics_payload(y, v, None, cluster, knha=knha, min_k_bias=5)
        rows = sensitivity_table(y, v, cluster, [i % 2 == 0 for i in range(y.size)], estimator="REML",
                                 test="knha" if knha else "z", level=0.95)
    json.dumps([payload, rows], allow_nan=False)
