"""Subgroup analyses: per-subgroup fits and the two tests for subgroup differences, each labelled.

* ``separate tau2`` (meta's and metapsyTools' default, RevMan style): each subgroup is fitted on its
  own, then Q_between is the Q statistic of a common-effect model on the subgroup estimates (with their
  Wald-type standard errors), chi-square with G - 1 df.
* ``common tau2``: the mixed-effects moderator test of metafor, ``rma(yi, vi, mods = ~ factor(g))``,
  QM with G - 1 df (an F test with knha).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from metapsych.stats import distributions as dist
from metapsych.stats.batch import BatchFit, fit_many
from metapsych.stats.metareg import r_sort_key
from metapsych.stats.projection import Factor, FactorProjection, project_factor
from metapsych.stats.rma import RmaFit
from metapsych.stats.tau2 import TIGHT, Control


@dataclass(frozen=True)
class BetweenTest:
    """Test for subgroup differences with a separate tau^2 per subgroup (Q_between, df = G - 1)."""

    Q_between: float
    df: int
    p_value: float
    estimates: np.ndarray
    se: np.ndarray
    method: str = "separate tau2"
    message: str | None = None


@dataclass(frozen=True)
class CommonTau2Test:
    """Mixed-effects moderator test with one tau^2 shared by all subgroups (metafor mods = ~factor(g))."""

    QM: float
    df: int
    df2: float | None
    p_value: float
    tau2: float
    method: str = "common tau2 (mixed-effects moderator test)"
    message: str | None = None


@dataclass(frozen=True)
class SubgroupAnalysis:
    """Per-level fits (levels in R's sort order) and both tests."""

    levels: tuple[str, ...]
    between: BetweenTest
    common: CommonTau2Test | None
    batch: BatchFit

    @cached_property
    def fits(self) -> dict[str, RmaFit]:
        """Per-level RmaFit objects (built on first access from ``batch``)."""
        return dict(zip(self.levels, self.batch))


def subgroup_levels(groups: Sequence[object]) -> tuple[str, ...]:
    """Distinct group labels as strings, sorted as R sorts factor levels (numerically if all are numbers)."""
    distinct = {str(g) for g in groups}
    try:
        return tuple(sorted(distinct, key=lambda label: (float(label), label)))
    except ValueError:
        return tuple(sorted(distinct, key=r_sort_key))


def subgroup_analysis(
    yi: np.ndarray,
    vi: np.ndarray,
    groups: Sequence[object],
    estimator: str = "REML",
    test: str = "z",
    level: float = 0.95,
    control: Control = TIGHT,
) -> SubgroupAnalysis:
    """Fit every subgroup with its own tau^2 (one vectorised batch) and run both difference tests.

    ``batch`` holds the per-level fits as arrays (in ``levels`` order), Q-profile intervals included.
    """
    labels = np.array([str(g) for g in groups])
    levels, index = _level_index(labels)
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    fits = fit_many(y, v, index, estimator=estimator, test=test, level=level, control=control)
    wald = fits if test == "z" else fit_many(y, v, index, estimator=estimator, test="z", level=level,
                                             control=control)
    return SubgroupAnalysis(
        levels=levels,
        between=between_test(wald.estimate, wald.se),
        common=_common_tau2(y, v, index, levels, estimator, test, level, control),
        batch=fits,
    )


def _level_index(labels: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """The levels (in R's order) and each label's position among them; the work is per distinct label."""
    distinct, inverse = np.unique(labels, return_inverse=True)
    levels = subgroup_levels(distinct.tolist())
    position = {lv: i for i, lv in enumerate(levels)}
    return levels, np.array([position[d] for d in distinct.tolist()], dtype=int)[inverse.ravel()]


def between_test(estimates: Sequence[float], se: Sequence[float]) -> BetweenTest:
    """Q of a common-effect model on the subgroup estimates: sum w (est - weighted mean)^2, w = 1/se^2."""
    est = np.asarray(estimates, dtype=float)
    s = np.asarray(se, dtype=float)
    g = est.size
    if g < 2:
        return BetweenTest(float("nan"), 0, float("nan"), est, s, message="fewer than two subgroups")
    if not (np.all(np.isfinite(est)) and np.all(np.isfinite(s)) and np.all(s > 0)):
        return BetweenTest(float("nan"), g - 1, float("nan"), est, s,
                           message="a subgroup has no finite estimate and standard error")
    w = 1.0 / s**2
    q = float(np.sum(w * (est - np.sum(w * est) / np.sum(w)) ** 2))
    return BetweenTest(q, g - 1, float(dist.chi2_sf(q, g - 1)), est, s)


def _common_tau2(y: np.ndarray, v: np.ndarray, index: np.ndarray, levels: tuple[str, ...], estimator: str,
                 test: str, level: float, control: Control) -> CommonTau2Test | None:
    """QM of ``rma(yi, vi, mods = ~ factor(g))``, computed on the cell-means form at O(k) cost.

    The Wald test that all level means are equal is invariant to the coding, so it equals metafor's QM
    for the treatment-coded coefficients: QM = sum_g W_g (mu_g - mu)^2 with W_g the precision of the mean
    of level g (the sum of its weights; for GENQ see ``_level_means``).
    """
    from metapsych.stats.tau2 import canonical_estimator, estimate_tau2

    g = len(levels)
    if g < 2:
        return None
    k = y.size
    method = canonical_estimator(estimator)
    design = Factor(index, g)
    if k <= g:
        nan = float("nan")
        return CommonTau2Test(nan, g - 1, None, nan, nan, message="as many subgroups as studies: no residual df")
    est = estimate_tau2(y - np.mean(y), v, design, method, control) if method != "EE" else None
    tau2 = 0.0 if est is None else est.tau2
    if est is not None and not est.converged:
        nan = float("nan")
        return CommonTau2Test(nan, g - 1, None, nan, nan, message=est.message)
    pr = project_factor(design, 1.0 / (v + tau2), y)
    mu, precision = _level_means(pr, design, y, v, tau2, method)
    qm = float(np.sum(precision * (mu - np.sum(precision * mu) / np.sum(precision)) ** 2))
    if test == "z":
        return CommonTau2Test(qm, g - 1, None, float(dist.chi2_sf(qm, g - 1)), tau2)
    s2w = 1.0
    if test in ("knha", "adhoc"):
        s2w = 0.0 if pr.rss <= np.finfo(float).eps else pr.rss / (k - g)
        s2w = max(1.0, s2w) if test == "adhoc" else s2w
    with np.errstate(divide="ignore"):
        f = qm / s2w / (g - 1)
    return CommonTau2Test(f, g - 1, float(k - g), float(dist.f_sf(f, g - 1, k - g)), tau2)


def _level_means(pr: FactorProjection, design: Factor, y: np.ndarray, v: np.ndarray, tau2: float,
                 method: str) -> tuple[np.ndarray, np.ndarray]:
    """The level means and their precisions (1 / unscaled variance) that metafor's QM rests on.

    Random-effects estimators: weighted means with weights 1/(vi + tau2), precision the sum of the
    weights. GENQ: metafor estimates the coefficients with the GENQ weights (1/vi) and takes their
    sandwich variance, sum a_i^2 (vi + tau2) / (sum a_i)^2 per level with a_i = 1/vi.
    """
    if method != "GENQ":
        return pr.beta, pr.sw
    a = 1.0 / v
    sa = np.bincount(design.index, a, design.groups)
    mu = np.bincount(design.index, a * y, design.groups) / sa
    variance = np.bincount(design.index, a**2 * (v + tau2), design.groups) / sa**2
    return mu, 1.0 / variance
