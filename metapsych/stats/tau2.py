"""Estimators of the between-study variance tau^2, each exactly as metafor::rma.uni computes it.

Every estimator returns the untruncated-then-truncated value metafor reports (``max(0, tau2)``), its
standard error by metafor's estimator-specific formula, and whether the iteration converged. Iterative
estimators use metafor's algorithms: Fisher scoring with step halving at the boundary for ML, REML and EB,
and root finding on the generalised Q statistic for PM. Non-convergence is reported, never hidden.
"""

from __future__ import annotations

import math

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from metapsych.stats.projection import Factor, Projection, project

Array = np.ndarray
Design = np.ndarray | Factor

ESTIMATORS = ("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ")
ALIASES = {"FE": "EE", "CE": "EE"}


@dataclass(frozen=True)
class Control:
    """Convergence settings; the defaults are the oracle's tight control (metafor threshold/tol/maxiter)."""

    threshold: float = 1e-10
    tol: float = 1e-12
    maxiter: int = 10000
    stepadj: float = 1.0


TIGHT = Control()
#: largest tolerated distance of metafor's stopping point (uniroot's, Fisher scoring's) from the exact root or
#: maximum, relative to it; beyond it metafor's own steps are replayed
PATH_TOL = 1e-7
CONFINT_MAXITER = 1000  # metafor's confint() has its own control, maxiter 1000, whatever the fit's


def confint_control(control: Control) -> Control:
    """The control of a Q-profile interval: the fit's, with at least confint()'s own iteration budget."""
    return replace(control, maxiter=max(control.maxiter, CONFINT_MAXITER))


@dataclass(frozen=True)
class Tau2Estimate:
    """tau^2 (truncated at 0), its standard error, and how the estimation went."""

    tau2: float
    se: float
    converged: bool
    iterations: int = 0
    message: str | None = None


def canonical_estimator(name: str) -> str:
    """Upper-case an estimator name and map metafor's aliases (FE, CE -> EE); ValueError if unknown."""
    key = name.strip()
    upper = {e.upper(): e for e in ESTIMATORS}
    key = ALIASES.get(key.upper(), upper.get(key.upper(), ""))
    if not key:
        raise ValueError(f"unknown estimator {name!r}; expected one of {', '.join(ESTIMATORS)}")
    return key


def tau2_max_default(yi: np.ndarray) -> float:
    """metafor's upper search bound for PM: max(100, 10 * mad(yi)^2) (R's mad with constant 1.4826)."""
    mad = 1.4826 * float(np.median(np.abs(yi - np.median(yi))))
    return max(100.0, 10.0 * mad**2)


def generalised_q(tau2: float, yi: Array, vi: Array, x: Design) -> float:
    """Q(tau2) = y'P y with weights 1/(vi + tau2): metafor's .QE.func without the objective."""
    return project(x, 1.0 / (vi + tau2), yi).rss


def q_root(yi: Array, vi: Array, x: Design, target: float, upper: float, control: Control = TIGHT) -> float:
    """tau2 in [0, upper] with Q(tau2) = target, given Q(0) >= target >= Q(upper).

    Q(tau2) is convex and decreasing (a partial minimum of the jointly convex sum w (y - Xb)^2 with
    w = 1/(v + tau2)), and dQ/dtau2 = -sum w^2 r^2, so Newton's method from 0 climbs monotonically to the
    root; Brent's method takes over in the unlikely case it stalls.
    """
    t = 0.0
    for _ in range(500):
        pr = project(x, 1.0 / (vi + t), yi)
        slope = -float(np.sum((pr.w * pr.resid) ** 2))
        step = -(pr.rss - target) / slope if slope < 0 else 0.0
        if not np.isfinite(step) or step <= 0:
            return t
        t = min(t + step, upper)
        if step <= 4 * np.finfo(float).eps * max(t, control.tol * 1e-3):
            return t
    from metapsych.stats.roots import uniroot

    return uniroot(lambda u: generalised_q(u, yi, vi, x) - target, 0.0, upper, control.tol * 1e-3, control.maxiter)


def estimate_tau2(yi: Array, vi: Array, x: Design, estimator: str, control: Control = TIGHT,
                  retry: bool = True) -> Tau2Estimate:
    """Estimate tau^2 for the model yi = X beta + u + e with var(e) = vi, as metafor's rma.uni does.

    ``yi`` should be centred (metafor uses the centred ``Ymc``); the estimate does not depend on it when
    X contains an intercept. Without ``retry`` an ML/REML/EB iteration that does not converge is not
    tried again with step halving (rma.uni's own fit of the model without moderators, for R^2, is not).
    """
    k, p = x.shape
    if estimator == "EE":
        return Tau2Estimate(0.0, float("nan"), True)
    if k == 1:
        return Tau2Estimate(0.0, float("nan"), True, message="tau^2 cannot be estimated from one study")
    if not retry and estimator in ("ML", "REML", "EB"):
        return _fisher(yi, vi, x, k, p, control, estimator)
    return _DISPATCH[estimator](yi, vi, x, k, p, control)


def _se(value: float) -> float:
    return float(np.sqrt(value)) if value >= 0 else float("nan")


def _hs(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control, *,
        small_sample: bool = False) -> Tau2Estimate:
    pr = project(x, 1.0 / vi, yi)
    sw = float(np.sum(pr.w))
    factor = k / (k - p) if small_sample else 1.0
    raw = (factor * pr.rss - k) / sw
    t = max(raw, 0.0)
    se = factor * _se(1.0 / sw**2 * (2 * (k - p) + 4 * t * pr.tr_p + 2 * t**2 * pr.sum_p2()))
    return Tau2Estimate(max(0.0, raw), se, True)


def _hsk(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control) -> Tau2Estimate:
    return _hs(yi, vi, x, k, p, control, small_sample=True)


def _he_raw(yi: Array, vi: Array, x: Design, k: int, p: int) -> tuple[float, Projection]:
    pr = project(x, np.ones(k), yi)
    return (pr.rss - pr.tr_pv(vi)) / (k - p), pr


def _he(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control) -> Tau2Estimate:
    raw, pr = _he_raw(yi, vi, x, k, p)
    t = max(raw, 0.0)
    se = _se(1.0 / (k - p) ** 2 * (2 * pr.sum_p2(vi, vi) + 4 * t * pr.tr_pv(vi) + 2 * t**2 * (k - p)))
    return Tau2Estimate(max(0.0, raw), se, True)


def _dl(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control) -> Tau2Estimate:
    pr = project(x, 1.0 / vi, yi)
    trp = pr.tr_p
    raw = (pr.rss - (k - p)) / trp
    t = max(raw, 0.0)
    se = _se(1.0 / trp**2 * (2 * (k - p) + 4 * t * trp + 2 * t**2 * pr.sum_p2()))
    return Tau2Estimate(max(0.0, raw), se, True)


def _genq(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control) -> Tau2Estimate:
    """Generalised Q estimator with weights 1/vi (numerically the DL estimate; metafor's GENQ default)."""
    pr = project(x, 1.0 / vi, yi)
    trp = pr.tr_p
    raw = (pr.rss - pr.tr_pv(vi)) / trp
    t = max(raw, 0.0)
    se = _se(1.0 / trp**2 * (2 * pr.sum_p2(vi, vi) + 4 * t * pr.sum_p2(1.0, vi) + 2 * t**2 * pr.sum_p2()))
    return Tau2Estimate(max(0.0, raw), se, True)


def _sj(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control) -> Tau2Estimate:
    tau2_0 = float(np.mean((yi - np.mean(yi)) ** 2))
    pr = project(x, 1.0 / (vi + tau2_0), yi)
    raw = tau2_0 * pr.rss / (k - p)
    t = max(raw, 0.0)
    inner = 2 * pr.sum_p2(vi, vi) + 4 * t * pr.sum_p2(1.0, vi) + 2 * t**2 * pr.sum_p2()
    se = _se(tau2_0**2 / (k - p) ** 2 * inner)
    return Tau2Estimate(max(0.0, raw), se, True)


def _pm_like_se(vi: np.ndarray, tau2: float, k: int, p: int) -> float:
    w = 1.0 / (vi + tau2)
    return _se(2.0 * k**2 / (k - p) / float(np.sum(w)) ** 2)


def _pm(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control, *,
        median: bool = False) -> Tau2Estimate:
    """Paule-Mandel: the tau2 where Q(tau2) = k - p (PMM: the chi-square median, qchisq(0.5, k - p))."""
    from metapsych.stats.distributions import chi2_lower_quantile

    target = float(chi2_lower_quantile(0.5, k - p)) if median else float(k - p)
    upper = tau2_max_default(yi)
    if generalised_q(0.0, yi, vi, x) < target:
        tau2 = 0.0
    elif generalised_q(upper, yi, vi, x) > target:
        return Tau2Estimate(
            float("nan"), float("nan"), False,
            message=f"{'PMM' if median else 'PM'}: Q(tau2) stays above k - p up to tau2.max = {upper:g}; no root",
        )
    else:  # R's uniroot, as metafor: where control.tol is not small next to the root, its stop is the answer
        from metapsych.stats.roots import uniroot

        tau2 = uniroot(lambda t: generalised_q(t, yi, vi, x) - target, 0.0, upper, control.tol, control.maxiter)
    return Tau2Estimate(max(0.0, tau2), _pm_like_se(vi, max(0.0, tau2), k, p), True)


def _pmm(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control) -> Tau2Estimate:
    return _pm(yi, vi, x, k, p, control, median=True)


def _scoring_step(method: str, pr: Projection, k: int, p: int) -> float:
    """One Fisher-scoring (ML, REML) or Morris (EB) update, as in metafor; NaN where the information is 0
    (weights so extreme that tr(PP) cancels to 0; the caller then stops, as the batch does)."""
    if method == "ML":
        return _ratio(pr.py_sq - float(np.sum(pr.w)), float(np.sum(pr.w**2)))
    if method == "REML":
        return _ratio(pr.py_sq - pr.tr_p, pr.sum_p2())
    return _ratio(pr.rss * k / (k - p) - k, float(np.sum(pr.w)))


def _ratio(a: float, b: float) -> float:
    """a / b as numpy divides (NaN or inf for b = 0), not raising as Python's float division does."""
    return a / b if b != 0 else math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)


def _fisher(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control, method: str) -> Tau2Estimate:
    tau2 = max(0.0, _he_raw(yi, vi, x, k, p)[0])
    visited: set[float] = set()
    old = math.inf
    for iteration in range(1, control.maxiter + 1):  # metafor: a step after maxiter steps fails, even if it settles
        pr = project(x, 1.0 / (vi + tau2), yi)
        adj = _scoring_step(method, pr, k, p) * control.stepadj
        if not np.isfinite(adj):
            adj = 0.0
        while tau2 + adj < 0.0:
            adj /= 2.0
        old, tau2 = tau2, tau2 + adj
        if abs(old - tau2) <= control.threshold:
            break
        if tau2 in visited:  # each step depends on tau2 alone: a value met again repeats the cycle to maxiter
            break
        visited.add(tau2)
    if abs(old - tau2) > control.threshold:
        return Tau2Estimate(float("nan"), float("nan"), False, control.maxiter, not_converged_message(method, control))
    if method in ("ML", "REML") and tau2 > control.threshold and _zero_is_better(yi, vi, x, tau2, method, control):
        tau2 = 0.0
    tau2 = max(0.0, tau2)
    if method == "ML":
        se = _se(_ratio(2.0, float(np.sum((1.0 / (vi + tau2)) ** 2))))
    elif method == "REML":
        se = _se(_ratio(2.0, project(x, 1.0 / (vi + tau2), yi).sum_p2()))
    else:
        se = _pm_like_se(vi, tau2, k, p)
    return Tau2Estimate(tau2, se, True, iteration)


def _loglik(yi: Array, vi: Array, x: Design, tau2: float, method: str) -> float:
    """metafor's ll0check log-likelihood (without the REML constant in X'X)."""
    k, p = x.shape
    pr = project(x, 1.0 / (vi + tau2), yi)
    ll = -0.5 * float(np.sum(np.log(vi + tau2))) - 0.5 * pr.rss
    if method == "ML":
        return ll - 0.5 * k * np.log(2 * np.pi)
    return ll - 0.5 * (k - p) * np.log(2 * np.pi) - 0.5 * pr.logdet_xwx()


def _zero_is_better(yi: Array, vi: Array, x: Design, tau2: float, method: str, control: Control) -> bool:
    """metafor's ll0check: Fisher scoring may stop at a local maximum above the likelihood at tau2 = 0."""
    return _loglik(yi, vi, x, 0.0, method) - _loglik(yi, vi, x, tau2, method) > control.tol


def step_halving(control: Control) -> Control:
    """The retry of an ML/REML/EB iteration that did not converge with full steps (as the oracle retries
    metafor): half steps and ten times the iterations."""
    return Control(control.threshold, control.tol, control.maxiter * 10, 0.5)


def not_converged_message(method: str, control: Control) -> str:
    return f"{method}: Fisher scoring did not converge in {control.maxiter} iterations"


def step_halving_message(method: str) -> str:
    return f"{method}: converged with step halving (stepadj = 0.5)"


def _iterative(method: str) -> Callable[..., Tau2Estimate]:
    def run(yi: Array, vi: Array, x: Design, k: int, p: int, control: Control) -> Tau2Estimate:
        result = _fisher(yi, vi, x, k, p, control, method)
        if not result.converged and control.stepadj == 1.0:
            second = _fisher(yi, vi, x, k, p, step_halving(control), method)
            if second.converged:
                return Tau2Estimate(second.tau2, second.se, True, second.iterations, step_halving_message(method))
        return result

    return run


_DISPATCH = {
    "HS": _hs,
    "HSk": _hsk,
    "HE": _he,
    "DL": _dl,
    "GENQ": _genq,
    "SJ": _sj,
    "PM": _pm,
    "PMM": _pmm,
    "ML": _iterative("ML"),
    "REML": _iterative("REML"),
    "EB": _iterative("EB"),
}
