"""``batch.fit_many`` gives the same numbers as ``rma.fit`` and ``confint_tau2``, analysis by analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metapsych.stats.batch import fit_many
from metapsych.stats.heterogeneity import confint_tau2
from metapsych.stats.rma import fit

from .oracle import close, yi_vi

ESTIMATORS = ["EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ"]
FIELDS = ["estimate", "tau2", "tau2_se", "Q", "Q_p", "I2", "H2", "vt", "pi_lower", "pi_upper", "s2w"]


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grid mixing ordinary, homogeneous, extreme, k = 1 and k = 2 analyses, plus the fixtures."""
    rng = np.random.default_rng(7)
    ys, vs, gs = [], [], []
    for g in range(20):
        k = [1, 2, 3, 5, 12][g % 5]
        v = rng.uniform(0.005, 0.3, k) * (10.0 ** rng.integers(-2, 2))
        tau2 = [0.0, 0.05, 0.4, 5.0][g % 4]
        y = rng.normal(0.3, np.sqrt(v + tau2))
        ys.append(y), vs.append(v), gs.append(np.full(k, g))
    for j, name in enumerate(["bcg", "edge_identical", "edge_extreme", "edge_varrange"]):
        y, v = yi_vi(name)
        ys.append(y), vs.append(v), gs.append(np.full(y.size, 100 + j))
    return np.concatenate(ys), np.concatenate(vs), np.concatenate(gs)


def _same(label: str, a: float, b: float) -> None:
    if isinstance(b, float) and not math.isfinite(b):
        assert not math.isfinite(a) or a == b, f"{label}: {a} vs {b}"
    else:
        assert close(a, b), f"{label}: batch {a!r} != fit {b!r}"


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("test", ["z", "knha"])
def test_batch_equals_fit(estimator: str, test: str) -> None:
    yi, vi, groups = _grid()
    batch = fit_many(yi, vi, groups, estimator=estimator, test=test)
    for i, g in enumerate(np.unique(groups)):
        mask = groups == g
        one = fit(yi[mask], vi[mask], estimator=estimator, test=test)
        got = batch[i]
        label = f"group {g} {estimator}/{test}"
        assert got.converged == one.converged
        for name in FIELDS:
            _same(f"{label} {name}", getattr(got, name), getattr(one, name))
        for name in ("se", "statistic", "p_value", "ci_lower", "ci_upper"):
            _same(f"{label} {name}", float(getattr(got, name)[0]), float(getattr(one, name)[0]))
        np.testing.assert_allclose(got.weights, one.weights, rtol=1e-9)
        assert got.test == one.test
        ci = confint_tau2(yi[mask], vi[mask], one)
        _same(f"{label} tau2 ci lb", batch.tau2_ci_lower[i], ci.tau2_lower)
        _same(f"{label} tau2 ci ub", batch.tau2_ci_upper[i], ci.tau2_upper)
        _same(f"{label} I2 ci ub", batch.I2_ci[1][i], ci.I2_upper)
        assert bool(batch.ci_null[i]) == ci.ci_null


def test_group_labels_need_not_be_sorted_or_contiguous() -> None:
    yi, vi, groups = _grid()
    shuffled = np.random.default_rng(1).permutation(yi.size)
    batch = fit_many(yi[shuffled], vi[shuffled], groups[shuffled] * 3 + 11)
    reference = fit_many(yi, vi, groups)
    np.testing.assert_allclose(batch.estimate, reference.estimate, rtol=1e-12)
    np.testing.assert_allclose(batch.tau2, reference.tau2, rtol=1e-9, atol=1e-13)


def test_non_converged_analyses_are_refitted_like_fit() -> None:
    from metapsych.stats.tau2 import Control

    yi, vi, groups = _grid()
    control = Control(threshold=1e-5, maxiter=2)  # a loose threshold: the batch follows metafor's path exactly
    batch = fit_many(yi, vi, groups, estimator="REML", control=control)
    assert not batch.converged.all()
    for i, g in enumerate(np.unique(groups)):
        mask = groups == g
        one = fit(yi[mask], vi[mask], estimator="REML", control=control)
        assert batch.converged[i] == one.converged
        assert batch.messages[i] == one.message
        if one.converged:
            assert close(batch.tau2[i], one.tau2) and close(batch.estimate[i], one.estimate)
        else:
            assert math.isnan(batch.estimate[i]) and math.isnan(batch.tau2[i])


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_analysis_with_one_study(estimator: str) -> None:
    """k = 1 everywhere (a grid with min_studies 1, subgroups of one study): each estimate is its study's."""
    batch = fit_many(np.array([0.3, 0.8]), np.array([0.02, 0.05]), np.array([0, 1]), estimator=estimator)
    np.testing.assert_allclose(batch.estimate, [0.3, 0.8])
    assert np.all(batch.tau2 == 0.0) and batch.converged.all()


def test_non_converged_analyses_report_no_numbers_like_fit() -> None:
    """A model that was not fitted has no Q, tau^2 se or weights either, in the batch as in fit() (the batch
    kept the first two and the weights, so results.json and pool on one cell disagreed)."""
    from metapsych.stats.tau2 import Control

    yi, vi, groups = _grid()
    control = Control(threshold=1e-5, maxiter=1)
    batch = fit_many(yi, vi, groups, estimator="ML", control=control)
    failed = np.flatnonzero(~batch.converged)
    assert failed.size
    for i in failed:
        mask = groups == np.unique(groups)[i]
        one = fit(yi[mask], vi[mask], estimator="ML", control=control)
        assert not one.converged
        got = batch[int(i)]
        for name in ("tau2_se", "Q", "Q_p", "vt", "I2", "H2", "s2w"):
            assert math.isnan(getattr(got, name)) and math.isnan(getattr(one, name)), name
        assert np.isnan(got.weights).all() and np.isnan(one.weights).all()
