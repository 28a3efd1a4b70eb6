"""Session 4 review: the step-function selection model fitted by projected Newton (stats/selection.py).

Reference values: metafor's selmodel(type = "stepfun") on the data sets of fixtures/README.md. Where the
likelihood has several local maxima, metafor (and the L-BFGS-B fit this replaced) reach the higher one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from metapsych.stats import distributions as dist
from metapsych.stats import selection
from metapsych.stats.selection import step_selection_model

FIXTURES = Path(__file__).parent / "fixtures"
RTOL = 1e-5


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.loadtxt(FIXTURES / f"{name}.csv", delimiter=",", skiprows=1)
    return values[:, 0], values[:, 1]


def _ref(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.selmodel.json").read_text())


def _nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in np.atleast_1d(values)], dtype=float)


def _assert_matches_metafor(name: str, steps: tuple[float, ...]) -> None:
    y, v = _data(name)
    ref = _ref(name)
    s = step_selection_model(y, v, steps=steps)
    assert list(s.k_per_interval) == ref["ptable_k"]
    np.testing.assert_allclose([s.loglik], [ref["ll"]], rtol=RTOL)
    np.testing.assert_allclose([s.estimate, s.se], [ref["estimate"], ref["se"]], rtol=RTOL, atol=1e-8)
    # a CI bound near 0 inherits the absolute error of estimate and se (metafor's BFGS stops ~1e-7 short)
    np.testing.assert_allclose([s.ci_lower, s.ci_upper], [ref["ci.lb"], ref["ci.ub"]], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(s.delta, ref["delta"], rtol=RTOL)
    np.testing.assert_allclose(s.delta_se[1:], _nan(ref["se.delta"][1:]), rtol=RTOL)
    np.testing.assert_allclose(s.tau2, ref["tau2"], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(s.lrt_p, ref["LRTp"], rtol=RTOL)


@pytest.mark.parametrize(("name", "steps"), [("sel_k60_steps025_05_5", (0.025, 0.05, 0.5)),
                                             ("sel_k15_five_steps", (0.01, 0.025, 0.05, 0.1, 0.5))])
def test_several_steps_match_metafor(name: str, steps: tuple[float, ...]) -> None:
    _assert_matches_metafor(name, steps)


@pytest.mark.xfail(strict=True, reason="projected Newton from the moment start stops at a local maximum with "
                   "tau2 = 0 (ll -14.5353); metafor and the L-BFGS-B fit of 81b89fc find ll -14.4850, "
                   "estimate 0.094 instead of -0.002, se 0.183 instead of 0.048")
def test_default_step_finds_metafors_maximum() -> None:
    """steps = 0.025, the report's setting: k = 30 effects with SMD-like variances."""
    _assert_matches_metafor("sel_k30_step025", (0.025,))


@pytest.mark.xfail(strict=True, reason="projected Newton stops at a local maximum with tau2 = 0, 0.2-0.7 "
                   "log-likelihood units below metafor's (and the L-BFGS-B fit of 81b89fc)")
@pytest.mark.parametrize("name", ["sel_k15_steps05_5", "sel_k19_steps05_5"])
def test_two_steps_find_metafors_maximum(name: str) -> None:
    _assert_matches_metafor(name, (0.05, 0.5))


def _projected_gradient(y: np.ndarray, v: np.ndarray, steps: tuple[float, ...],
                        s: selection.SelectionModel) -> np.ndarray:
    """The gradient of the log-likelihood at the fit, zero where a bound holds the parameter."""
    cuts = np.unique(np.append(np.asarray(steps, dtype=float), 1.0))
    group = np.searchsorted(cuts, dist.norm_cdf(-y / np.sqrt(v)), side="left")
    model = selection._Likelihood(y, v, group, cuts)
    theta = np.concatenate([[s.estimate, s.tau2], s.delta[1:]])
    grad = model.derivatives(theta)[0]
    held = ((theta <= model.lower) & (grad <= 0)) | ((theta >= model.upper) & (grad >= 0))
    return np.where(held, 0.0, grad)


def test_an_unfinished_maximisation_is_not_reported_as_a_fit() -> None:
    """Variances of 1e-6 to 6e-5: the fit must reach a stationary point, or say that it did not."""
    steps = (0.01, 0.025, 0.05, 0.1, 0.5)
    y, v = _data("sel_k35_tiny_vi")
    s = step_selection_model(y, v, steps=steps)
    if s.message is None:
        grad = _projected_gradient(y, v, steps, s)
        assert np.max(np.abs(grad)) < 1e-4 * max(1.0, abs(s.loglik))
        assert s.loglik >= _ref("sel_k35_tiny_vi")["ll"] - 1e-6
        assert np.isfinite(s.se)


def test_delta_at_its_upper_bound_is_flagged_as_metafor_warns() -> None:
    """k = 6, one significant study: delta reaches DELTA_MAX (metafor: 99.99996 and its bound warning)."""
    y, v = _data("sel_k6_delta_at_bound")
    ref = _ref("sel_k6_delta_at_bound")
    s = step_selection_model(y, v)
    assert ref["warn"] and s.message is not None and "bound" in s.message
    assert s.delta[1] == selection.DELTA_MAX
    np.testing.assert_allclose([s.estimate, s.se, s.loglik], [ref["estimate"], ref["se"], ref["ll"]], rtol=1e-5)
    np.testing.assert_allclose(s.delta_se[1], ref["se.delta"][1], rtol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_fit_is_a_stationary_point_for_small_k_and_extreme_variances(seed: int) -> None:
    """k = 6 to 8, variances from 1e-4 to 10 within one data set, and 2 or 3 steps: a KKT point."""
    rng = np.random.default_rng(seed)
    steps = ((0.025,), (0.025, 0.5), (0.05, 0.5))[seed % 3]
    k = 6 + seed % 3
    for _ in range(200):
        v = 10 ** rng.uniform(-4, 1, k)
        y = rng.normal(0.3, np.sqrt(v + 0.05))
        cuts = np.unique(np.append(steps, 1.0))
        if np.all(np.bincount(np.searchsorted(cuts, dist.norm_cdf(-y / np.sqrt(v))), minlength=cuts.size) > 0):
            break
    s = step_selection_model(y, v, steps=steps)
    grad = _projected_gradient(y, v, steps, s)
    assert np.max(np.abs(grad) * np.maximum(1.0, np.abs(np.concatenate([[s.estimate, s.tau2], s.delta[1:]])))) < 1e-5
    again = step_selection_model(y, v, steps=steps)
    assert again.loglik == s.loglik and np.array_equal(again.delta, s.delta)


@pytest.mark.parametrize("significant", [True, False])
def test_all_or_no_significant_effects_are_refused(significant: bool) -> None:
    """An empty p-value interval (every effect significant, or none): not identified, as documented."""
    v = np.full(8, 0.01)
    y = np.linspace(0.3, 0.6, 8) if significant else np.linspace(-0.3, 0.1, 8)
    with pytest.raises(ValueError, match="not identified"):
        step_selection_model(y, v)
