"""Step-function selection model (Vevea & Hedges), as metafor's
``selmodel(fit, type = "stepfun", steps = 0.025)`` with one-sided p-values (alternative = "greater").

Studies are grouped by their one-sided p-value, p = 1 - Phi(yi / sqrt(vi)), into the intervals (0, s1],
(s1, s2], ..., (s_{N-1}, 1]; a study in interval j is published with relative probability delta_j
(delta_1 = 1). beta, tau2 and delta are estimated by maximum likelihood; standard errors come from the
Hessian of the log-likelihood in (beta, tau2, delta), as metafor computes them. The likelihood-ratio test
compares with the model without selection (all delta = 1), i.e. the ML random-effects model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from metapsych.stats import distributions as dist

DELTA_MAX = 100.0


@dataclass(frozen=True)
class SelectionModel:
    """ML estimates under selection. ``k_per_interval`` counts studies per p-value interval."""

    estimate: float
    se: float
    p_value: float
    ci_lower: float
    ci_upper: float
    tau2: float
    delta: np.ndarray
    delta_se: np.ndarray
    lrt: float
    lrt_p: float
    loglik: float
    steps: np.ndarray
    k_per_interval: np.ndarray
    message: str | None


def step_selection_model(yi, vi, steps: tuple[float, ...] = (0.025,), level: float = 0.95) -> SelectionModel:
    """Fit the intercept-only step-function selection model. ValueError if an interval has no study."""
    from scipy import optimize, special

    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    cuts = np.unique(np.append(np.asarray(steps, dtype=float), 1.0))
    pvals = special.ndtr(-y / np.sqrt(v))
    group = np.searchsorted(cuts, pvals, side="left")
    counts = np.bincount(group, minlength=cuts.size)
    if np.any(counts == 0):
        raise ValueError("a p-value interval of the selection model holds no study; the model is not identified")
    bounds_q = -np.sqrt(v)[:, None] * special.ndtri(cuts[None, :])  # y above q_j <=> p <= s_j
    n_delta = cuts.size - 1

    def negll(theta: np.ndarray) -> float:
        return -_loglik(theta[0], theta[1], np.concatenate([[1.0], theta[2:]]), y, v, group, bounds_q)

    start = np.concatenate([[np.mean(y)], [max(np.var(y) - np.mean(v), 0.0) + 0.001], np.ones(n_delta)])
    bounds = [(None, None), (0.0, None)] + [(0.0, DELTA_MAX)] * n_delta
    with warnings.catch_warnings():  # finite differences may step where the likelihood is infinite
        warnings.simplefilter("ignore", RuntimeWarning)
        opt = optimize.minimize(negll, start, method="L-BFGS-B", bounds=bounds,
                                options={"ftol": 1e-12, "gtol": 1e-8, "maxiter": 10000})
    theta = _polish(negll, opt.x, bounds)
    ll = -negll(theta)
    ll0 = _ml_null_loglik(y, v)
    delta = np.concatenate([[1.0], theta[2:]])
    cov = _covariance(negll, theta)
    se = float(np.sqrt(cov[0, 0]))
    delta_se = np.concatenate([[np.nan], np.sqrt(np.diag(cov)[2:])])
    crit = dist.norm_crit(dist.alpha_from_level(level))
    lrt = max(0.0, 2 * (ll - ll0))
    at_bound = np.any(delta[1:] >= DELTA_MAX - 1e-3) or np.any(delta[1:] <= 1e-6)
    return SelectionModel(
        estimate=float(theta[0]), se=se, p_value=float(dist.norm_two_sided_p(theta[0] / se)),
        ci_lower=float(theta[0] - crit * se), ci_upper=float(theta[0] + crit * se), tau2=float(theta[1]),
        delta=delta, delta_se=delta_se, lrt=lrt, lrt_p=float(dist.chi2_sf(lrt, n_delta)), loglik=ll,
        steps=cuts, k_per_interval=counts,
        message="a delta estimate is at its bound; treat the selection model with caution" if at_bound else None,
    )


def _loglik(mu, tau2, delta, y, v, group, q) -> float:
    from scipy import special

    s = np.sqrt(v + tau2)
    upper = special.ndtr((mu - q) / s[:, None])  # P(y > q_j)
    upper[:, -1] = 1.0
    probs = np.diff(np.concatenate([np.zeros((y.size, 1)), upper], axis=1), axis=1)
    a = probs @ delta
    with np.errstate(divide="ignore"):
        dens = -0.5 * np.log(2 * np.pi * s**2) - 0.5 * (y - mu) ** 2 / s**2
        return float(np.sum(np.log(delta[group]) + dens - np.log(a)))


def _polish(f, x, bounds, iterations: int = 8) -> np.ndarray:
    """Newton steps on the numerical Hessian for interior optima (L-BFGS-B stops slightly short)."""
    for _ in range(iterations):
        interior = [lo is None or xi > lo + 1e-8 for xi, (lo, _) in zip(x, bounds)]
        if not all(interior) or np.any(x[2:] >= DELTA_MAX - 1e-6):
            return x
        g, h = _grad(f, x), _hessian(f, x)
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            return x
        new = x - step
        if not all(lo is None or ni >= lo for ni, (lo, _) in zip(new, bounds)) or f(new) > f(x) + 1e-12:
            return x
        x = new
        if np.max(np.abs(step) / np.maximum(1.0, np.abs(x))) < 1e-10:
            break
    return x


def _grad(f, x, h: float = 1e-6) -> np.ndarray:
    e = np.eye(x.size) * h * np.maximum(1.0, np.abs(x))
    return np.array([(f(x + d) - f(x - d)) / (2 * d.max()) for d in e])


def _hessian(f, x, h: float = 1e-4) -> np.ndarray:
    n = x.size
    steps = h * np.maximum(1.0, np.abs(x))
    out = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei = np.eye(n)[i] * steps[i]
            ej = np.eye(n)[j] * steps[j]
            val = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * steps[i] * steps[j])
            out[i, j] = out[j, i] = val
    return out


def _covariance(f, x) -> np.ndarray:
    """Inverse Hessian of the negative log-likelihood; with tau2 at 0 it is held fixed (dropped).

    NaN entries where the Hessian cannot be inverted.
    """
    keep = np.ones(x.size, bool)
    keep[1] = x[1] > 1e-8
    out = np.full((x.size, x.size), np.nan)
    try:
        inv = np.linalg.inv(_hessian(lambda t: f(_embed(t, x, keep)), x[keep]))
    except np.linalg.LinAlgError:
        return out
    if np.all(np.diag(inv) > 0):
        out[np.ix_(keep, keep)] = inv
    return out


def _embed(t: np.ndarray, x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    full = x.copy()
    full[keep] = t
    return full


def _ml_null_loglik(y: np.ndarray, v: np.ndarray) -> float:
    """Log-likelihood of the ML random-effects model (the selection model with every delta = 1)."""
    from metapsych.stats.rma import fit

    f = fit(y, v, estimator="ML")
    s2 = v + f.tau2
    return float(np.sum(-0.5 * np.log(2 * np.pi * s2) - 0.5 * (y - f.estimate) ** 2 / s2))
