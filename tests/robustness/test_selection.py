"""Step-function selection model against metafor selmodel(type="stepfun", steps=0.025), to 1e-5.

metafor maximises with optim (BFGS) and takes standard errors from a numerical Hessian; metapsych
uses Newton steps on the analytic derivatives. Estimates agree to 2e-7, standard errors to 4.3e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from metapsych.stats.selection import step_selection_model
from robustness_ref import assert_close, load_csv, load_json

RTOL = 1e-5


@pytest.mark.parametrize("name", ["thirdwave", "random14", "selmodel_hard"])
def test_matches_metafor(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.selmodel.json")["REML"]
    s = step_selection_model(d["yi"], d["vi"])
    assert list(s.k_per_interval) == ref["ptable_k"]
    assert_close([s.estimate, s.se, s.ci_lower, s.ci_upper, s.p_value], [ref["estimate"], ref["se"], ref["ci.lb"],
                 ref["ci.ub"], ref["pval"]], rtol=RTOL)
    assert_close(s.delta, ref["delta"], rtol=RTOL)
    assert_close(s.delta_se[1:], ref["se.delta"][1:], rtol=RTOL)
    assert_close([s.loglik, s.lrt_p], [ref["ll"], ref["LRTp"]], rtol=RTOL)
    assert_close(s.tau2, ref["tau2"], rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_analytic_derivatives_match_finite_differences(seed: int) -> None:
    """The Newton steps and standard errors rest on the analytic gradient and Hessian."""
    from metapsych.stats import selection

    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.3, 80)
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    cuts = np.array([0.025, 0.5, 1.0])
    group = np.searchsorted(cuts, 1 - np.vectorize(lambda z: 0.5 * math.erfc(-z / math.sqrt(2)))(y / np.sqrt(v)))
    model = selection._Likelihood(y, v, group, cuts)
    theta = np.array([0.2, 0.04, 0.7, 0.4])
    grad, hess = model.derivatives(theta)
    h = 1e-6
    steps = np.eye(theta.size) * h
    num_grad = [(model.loglik(theta + e) - model.loglik(theta - e)) / (2 * h) for e in steps]
    num_hess = [(model.derivatives(theta + e)[0] - model.derivatives(theta - e)[0]) / (2 * h) for e in steps]
    np.testing.assert_allclose(grad, num_grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hess, num_hess, rtol=1e-5, atol=1e-5)


def test_empty_interval_is_refused() -> None:
    """dat.bcg: every one-sided p-value is above 0.025 (all effects negative); metafor's fit is degenerate."""
    d = load_csv("bcg")
    with pytest.raises(ValueError, match="not identified"):
        step_selection_model(d["yi"], d["vi"])


def test_no_selection_gives_delta_near_one() -> None:
    rng = np.random.default_rng(3)
    v = rng.uniform(0.01, 0.05, 60)
    y = 0.4 + rng.normal(0, np.sqrt(v + 0.02))
    s = step_selection_model(y, v)
    assert s.lrt_p > 0.01
    assert np.isfinite(s.se)
