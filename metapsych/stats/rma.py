"""Univariate fixed-, random- and mixed-effects models, numerically as metafor::rma.uni.

``fit`` is the entry point other layers build on (leave-one-out, trim-and-fill, regression tests,
subgroups, meta-regression). It returns a frozen ``RmaFit``; intercept-only models also carry the
prediction interval of metafor's ``predict()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from metapsych.stats import distributions as dist
from metapsych.stats.projection import RankDeficientError, project
from metapsych.stats.tau2 import (TIGHT, Control, Tau2Estimate, canonical_estimator, estimate_tau2, step_halving,
                                   step_halving_message)

TESTS = ("z", "knha", "adhoc", "t")
EVTOL = 1e-7  # metafor's control evtol: X'X with an eigenvalue at or below it is not of full rank (absolute)
Array = np.ndarray


@dataclass(frozen=True)
class RmaFit:
    """Result of ``fit``; field names follow docs/architecture.md (stats API). I2 is in percent."""

    k: int
    p: int
    estimator: str
    test: str
    level: float
    converged: bool
    message: str | None
    beta: np.ndarray
    se: np.ndarray
    vb: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    df: float | None
    s2w: float
    tau2: float
    tau2_se: float
    tau: float
    Q: float
    Q_df: int
    Q_p: float
    I2: float
    H2: float
    vt: float
    QM: float
    QM_df: int
    QM_p: float
    R2: float | None
    weights: np.ndarray
    pi_lower: float
    pi_upper: float

    @property
    def estimate(self) -> float:
        """The intercept (the pooled effect of an intercept-only model)."""
        return float(self.beta[0])

    @property
    def ci(self) -> tuple[float, float]:
        """Confidence interval of the intercept."""
        return float(self.ci_lower[0]), float(self.ci_upper[0])


def fit(
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray | None = None,
    estimator: str = "REML",
    test: str = "z",
    level: float = 0.95,
    tau2: float | None = None,
    control: Control = TIGHT,
    with_r2: bool = True,
    retry: bool = True,
) -> RmaFit:
    """Fit ``yi ~ X`` with sampling variances ``vi`` as ``metafor::rma.uni(yi, vi, mods=X, method=, test=)``.

    X includes the intercept column (None = intercept only). ``tau2`` fixes tau^2 instead of estimating
    it. ``test``: "z" (Wald), "knha" (Hartung-Knapp-Sidik-Jonkman, t with k - p df), "adhoc" (HK, never
    narrower than z), "t" (unadjusted se, t(k - p)). A non-converging estimator gives ``converged=False``,
    a message, and NaN numbers rather than a wrong estimate; ``retry=False`` does not try ML/REML/EB again
    with step halving first (as the oracle does; metafor's rma() itself does not). ValueError for invalid
    arguments.
    """
    y, v, x = _check_inputs(yi, vi, X)
    method = canonical_estimator(estimator)
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {', '.join(TESTS)}")
    alpha = dist.alpha_from_level(level)
    k, p = x.shape
    if method != "EE" and tau2 is None and 1 < k <= p:  # tau^2 is one parameter more than the k - p residual df
        raise ValueError(f"Number of parameters to be estimated is larger than the number of observations "
                         f"(k = {k}, {p} coefficients and tau^2), as metafor stops")
    note = None
    if k == 1 and test != "z":
        test, note = "z", "z test used since k = 1 (as metafor)"
    est = _estimate(y, v, x, method, tau2, control, retry)
    if not est.converged:
        return _failed(k, p, method, test, level, est.message)
    core = _fixed_effects(y, v, x, est.tau2, test, alpha, genq=method == "GENQ")
    crit = core.pop("crit")
    het = _heterogeneity(y, v, x, method, est.tau2)
    qm = _omnibus(core["beta"], core["vb"], test, k, p, _has_intercept(x))
    retried = step_halving(control) if est.message == step_halving_message(method) else control
    r2 = _pseudo_r2(y, v, x, method, est.tau2, retried) if with_r2 and p > 1 and _has_intercept(x) else None
    w = 1.0 / v if method == "GENQ" else 1.0 / (v + est.tau2)
    has_pi = p == 1 and method != "EE"
    pi_lo, pi_hi = _prediction_interval(core, crit, est.tau2) if has_pi else (float("nan"), float("nan"))
    return RmaFit(
        k=k, p=p, estimator=method, test=test, level=level, converged=True,
        message="; ".join(m for m in (est.message, note) if m) or None,
        **core, tau2=est.tau2, tau2_se=est.se, tau=float(np.sqrt(est.tau2)), **het, **qm, R2=r2,
        weights=100.0 * w / np.sum(w), pi_lower=pi_lo, pi_upper=pi_hi,
    )


def _check_inputs(yi: ArrayLike, vi: ArrayLike, X: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    if y.size == 0 or y.shape != v.shape:
        raise ValueError("yi and vi must be non-empty and of equal length")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v))):
        raise ValueError("yi and vi must be finite")
    if np.any(v <= 0):
        raise ValueError("sampling variances vi must be positive")
    x = np.ones((y.size, 1)) if X is None else np.asarray(X, dtype=float)
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ValueError("X must be a (k, p) matrix")
    if x.shape[1] > y.size:
        raise RankDeficientError("more coefficients than studies")
    if x.shape[1] > 1 and np.linalg.eigvalsh(x.T @ x).min() <= EVTOL:
        raise RankDeficientError(f"Model matrix not of full rank. Cannot fit model. (an eigenvalue of X'X is at most "
                                 f"{EVTOL:g}, as metafor checks it: rescale a moderator of very small spread)")
    return y, v, x


def _has_intercept(x: np.ndarray) -> bool:
    return bool(np.all(x[:, 0] == 1.0))


def _estimate(y: Array, v: Array, x: Array, method: str, tau2: float | None, control: Control,
              retry: bool = True) -> Tau2Estimate:
    if method == "EE":
        return Tau2Estimate(0.0, float("nan"), True)
    if tau2 is not None:
        return Tau2Estimate(float(tau2), float("nan"), True, message="tau^2 fixed by the caller")
    return estimate_tau2(y - np.mean(y), v, x, method, control, retry=retry)


def _fixed_effects(y: Array, v: Array, x: Array, tau2: float, test: str, alpha: float,
                   genq: bool = False) -> dict[str, Any]:
    """beta, vb, tests and CIs of the fixed effects (metafor's 'Model fitting' and tests block).

    With ``genq`` the coefficients are the weighted least-squares estimates with weights 1/vi and a
    sandwich variance, as metafor computes them for method="GENQ".
    """
    k, p = x.shape
    pr = project(x, 1.0 / (v + tau2), y)
    beta, vb = pr.beta, pr.inverse_xwx()
    if genq:
        pa = project(x, 1.0 / v, y)
        s = pa.inverse_xwx()
        xa = x / v[:, None]
        beta, vb = pa.beta, s @ (xa.T @ ((v + tau2)[:, None] * xa)) @ s
    s2w = 1.0
    if test in ("knha", "adhoc"):
        rss = pr.rss
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / (k - p) if k > p else float("nan")
        if test == "adhoc":
            s2w = max(1.0, s2w)
    vb = s2w * vb
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = beta / se
    if test == "z":
        df = None
        pval = dist.norm_two_sided_p(stat)
        crit = dist.norm_crit(alpha)
    else:
        df = float(k - p)
        pval = dist.t_two_sided_p(stat, df) if df > 0 else np.full(p, np.nan)
        crit = float(dist.t_crit(alpha, df)) if df > 0 else float("nan")
    return dict(beta=beta, se=se, vb=vb, statistic=stat, p_value=pval, ci_lower=beta - crit * se,
                ci_upper=beta + crit * se, df=df, s2w=s2w, crit=crit)


def _heterogeneity(y: Array, v: Array, x: Array, method: str, tau2: float) -> dict[str, Any]:
    """Q (with weights 1/vi), its p-value, I2, H2 and the typical within-study variance vt."""
    k, p = x.shape
    if k <= p:
        return dict(Q=0.0, Q_df=k - p, Q_p=1.0, I2=0.0, H2=1.0, vt=0.0)
    pr = project(x, 1.0 / v, y - np.mean(y))
    q = max(0.0, pr.rss)
    vt = (k - p) / pr.tr_p
    if method == "EE":
        i2 = max(0.0, 100.0 * (q - (k - p)) / q) if q > 0 else 0.0
        h2 = q / (k - p)
    else:
        i2 = 100.0 * tau2 / (vt + tau2)
        h2 = tau2 / vt + 1.0
    return dict(Q=q, Q_df=k - p, Q_p=float(dist.chi2_sf(q, k - p)), I2=i2, H2=h2, vt=vt)


def _omnibus(beta: Array, vb: Array, test: str, k: int, p: int, intercept: bool) -> dict[str, Any]:
    """QM: Wald test of all coefficients but the intercept (chi2, or F for t-based tests)."""
    btt = np.arange(1, p) if intercept and p > 1 else np.arange(p)
    m = btt.size
    b = beta[btt]
    try:
        qm = float(b @ np.linalg.solve(vb[np.ix_(btt, btt)], b))
    except np.linalg.LinAlgError:
        qm = float("nan")
    if test == "z":
        return dict(QM=qm, QM_df=m, QM_p=float(dist.chi2_sf(qm, m)))
    qm /= m
    qm_p = float(dist.f_sf(qm, m, k - p)) if k > p else float("nan")
    return dict(QM=qm, QM_df=m, QM_p=qm_p)


def _pseudo_r2(y: Array, v: Array, x: Array, method: str, tau2: float, control: Control) -> float | None:
    """metafor's R^2 for moderator models: proportional reduction of tau^2 (adjusted WLS R^2 for EE).

    The model without moderators is fitted with the control the full model converged with, and not tried
    again with step halving when it does not converge: rma.uni then reports R^2 as NA."""
    if method == "EE":
        return _wls_adjusted_r2(y, v, x)
    base = estimate_tau2(y - np.mean(y), v, np.ones((y.size, 1)), method, control, retry=False)
    if not base.converged:
        return None
    if base.tau2 == 0.0:
        return 0.0
    return max(0.0, 100.0 * (base.tau2 - tau2) / base.tau2)


def _wls_adjusted_r2(y: Array, v: Array, x: Array) -> float:
    """max(0, 100 * adjusted R^2) of lm(yi ~ X, weights = 1/vi), as metafor reports for EE models."""
    if np.all(y == y[0]):
        return 0.0
    k, p = x.shape
    if k == p:  # a saturated model: no residual df (metafor: NaN)
        return float("nan")
    w = 1.0 / v
    fitted = x @ project(x, w, y).beta
    rss = float(np.sum(w * (y - fitted) ** 2))
    mss = float(np.sum(w * (fitted - np.sum(w * fitted) / np.sum(w)) ** 2))
    r2 = mss / (mss + rss)
    adj = 1.0 - (1.0 - r2) * (k - 1) / (k - p)
    return max(0.0, 100.0 * adj)


def _prediction_interval(core: dict[str, Any], crit: float, tau2: float) -> tuple[float, float]:
    """metafor predict(): pred +/- crit * sqrt(se^2 + tau2), crit as for the CI (z, or t(k - p))."""
    b, se = float(core["beta"][0]), float(core["se"][0])
    half = crit * np.sqrt(se**2 + tau2)
    return b - half, b + half


def _failed(k: int, p: int, method: str, test: str, level: float, message: str | None) -> RmaFit:
    nan = float("nan")
    vec = np.full(p, nan)
    return RmaFit(
        k=k, p=p, estimator=method, test=test, level=level, converged=False, message=message,
        beta=vec, se=vec, vb=np.full((p, p), nan), statistic=vec, p_value=vec, ci_lower=vec, ci_upper=vec,
        df=None if test == "z" else float(k - p), s2w=nan, tau2=nan, tau2_se=nan, tau=nan, Q=nan,
        Q_df=k - p, Q_p=nan, I2=nan, H2=nan, vt=nan, QM=nan, QM_df=max(p - 1, 1), QM_p=nan, R2=None,
        weights=np.full(k, nan), pi_lower=nan, pi_upper=nan,
    )
