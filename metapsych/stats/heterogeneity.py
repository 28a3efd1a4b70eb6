"""Q-profile confidence intervals for tau^2, tau, I^2 and H^2, as metafor's ``confint.rma.uni``.

The Q-profile interval inverts the generalised Q statistic Q(tau2) = sum w_i (y_i - X b)^2 with
w_i = 1/(v_i + tau2), which decreases in tau2: the bounds solve Q(tau2) = chi2 quantiles with k - p df.
Searches run over [0, max(100, 10 tau2)]; when Q(0) is already below the lower quantile the interval is
empty ("ci.null", reported as [0, 0]), and when the bound reaches the search limit it is reported with
``ub_sign = ">"``, exactly as metafor does. I^2 and H^2 bounds transform the tau^2 bounds with vt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metapsych.stats import distributions as dist
from metapsych.stats.rma import RmaFit
from metapsych.stats.roots import uniroot
from metapsych.stats.tau2 import PATH_TOL, TIGHT, Control, confint_control, generalised_q, q_root


@dataclass(frozen=True)
class Tau2Interval:
    """Q-profile interval for tau^2 and the tau, I^2 (percent) and H^2 intervals derived from it."""

    tau2_lower: float
    tau2_upper: float
    tau_lower: float
    tau_upper: float
    I2_lower: float
    I2_upper: float
    H2_lower: float
    H2_upper: float
    ci_null: bool
    lb_sign: str
    ub_sign: str
    message: str | None = None


NOT_ESTIMABLE = float("nan")


def confint_tau2(
    yi: np.ndarray, vi: np.ndarray, fitted: RmaFit, X: np.ndarray | None = None, level: float | None = None,
    control: Control = TIGHT,
) -> Tau2Interval:
    """Q-profile CI of the model in ``fitted`` (fitted on ``yi``, ``vi``, ``X``), at ``level`` (default: the fit's)."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    x = np.ones((y.size, 1)) if X is None else np.asarray(X, dtype=float)
    k, p = x.shape
    if fitted.estimator == "EE" or k - p < 1 or not fitted.converged:
        reason = ("a common-effect model has no tau^2" if fitted.estimator == "EE"
                  else "tau^2 is not estimable" if fitted.converged else "the model did not converge")
        return _empty(f"no confidence interval for tau^2: {reason}")
    alpha = dist.alpha_from_level(fitted.level if level is None else level)
    lower, upper, ci_null, lb_sign, ub_sign = qprofile_bounds(y, v, x, fitted.tau2, alpha, control)
    return _derived(lower, upper, fitted.vt, ci_null, lb_sign, ub_sign)


def qprofile_bounds(
    y: np.ndarray, v: np.ndarray, x: np.ndarray, tau2: float, alpha: float, control: Control = TIGHT
) -> tuple[float, float, bool, str, str]:
    """(lower, upper, ci_null, lb_sign, ub_sign) of the Q-profile tau^2 interval, following metafor's branches."""
    k, p = x.shape
    t_min, t_max = 0.0, max(100.0, 10.0 * tau2)
    crit_u = float(dist.chi2_upper_quantile(alpha / 2, k - p))
    crit_l = float(dist.chi2_lower_quantile(alpha / 2, k - p))
    q_min = generalised_q(t_min, y, v, x)
    q_max = generalised_q(t_max, y, v, x)

    def root(target: float) -> float:
        return _metafor_root(y, v, x, target, t_max, confint_control(control))

    lb_sign = ub_sign = ""
    ci_null = False
    if q_min < crit_l:
        lower = upper = t_min
        lb_sign = ub_sign = "<"
        ci_null = True
    else:
        upper = t_max if q_max > crit_l else root(crit_l)
        ub_sign = ">" if q_max > crit_l else ""
    if q_max > crit_u:
        lower = upper = t_max
        lb_sign = ub_sign = ">"
    elif q_min < crit_u:
        lower = t_min
    else:
        lower = root(crit_u)
    return lower, upper, ci_null, lb_sign, ub_sign


def _metafor_root(y: np.ndarray, v: np.ndarray, x: np.ndarray, target: float, t_max: float,
                  control: Control) -> float:
    """The tau^2 with Q(tau2) = target where metafor's uniroot(tol = control.tol) over [0, t_max] stops.

    uniroot stops within about tol / 2 of the root, which is far from it relative to a tiny bound
    (tol = 1e-12 next to a bound of 1e-8 moves I^2 and H^2 bounds by 1e-4): there R's steps are replayed.
    Elsewhere the exact root is within PATH_TOL of metafor's stop.
    """
    exact = q_root(y, v, x, target, t_max, control)
    if control.tol <= PATH_TOL * exact:
        return exact
    return uniroot(lambda t: generalised_q(t, y, v, x) - target, 0.0, t_max, control.tol, control.maxiter)


def _derived(lower: float, upper: float, vt: float, ci_null: bool, lb_sign: str, ub_sign: str) -> Tau2Interval:
    message = None
    if ci_null:
        message = "Q-profile interval for tau^2 is empty (Q(0) below the lower quantile); reported as [0, 0]"
    elif ub_sign == ">":
        message = "upper tau^2 bound reached the search limit; the true bound is larger"
    return Tau2Interval(
        tau2_lower=lower, tau2_upper=upper, tau_lower=float(np.sqrt(lower)), tau_upper=float(np.sqrt(upper)),
        I2_lower=100.0 * lower / (vt + lower), I2_upper=100.0 * upper / (vt + upper),
        H2_lower=lower / vt + 1.0, H2_upper=upper / vt + 1.0,
        ci_null=ci_null, lb_sign=lb_sign, ub_sign=ub_sign, message=message,
    )


def _empty(message: str) -> Tau2Interval:
    nan = NOT_ESTIMABLE
    return Tau2Interval(nan, nan, nan, nan, nan, nan, nan, nan, False, "", "", message)
