"""Step-function selection model (Vevea & Hedges), as metafor's
``selmodel(fit, type = "stepfun", steps = 0.025)`` with one-sided p-values (alternative = "greater").

Studies are grouped by their one-sided p-value, p = 1 - Phi(yi / sqrt(vi)), into the intervals (0, s1],
(s1, s2], ..., (s_{N-1}, 1]; a study in interval j is published with relative probability delta_j
(delta_1 = 1). beta, tau2 and delta are estimated by maximum likelihood; standard errors come from the
Hessian of the log-likelihood in (beta, tau2, delta), as metafor computes them. The likelihood-ratio test
compares with the model without selection (all delta = 1), i.e. the ML random-effects model.

The maximum is found by projected Newton steps on the analytic gradient and Hessian (metafor uses optim's
BFGS and a numerical Hessian; both reach the same optimum, this one to machine precision and without
importing scipy.optimize, which costs more than the fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from metapsych.stats import distributions as dist

DELTA_MAX = 100.0
MAX_ITERATIONS = 200
TAU2_AT_ZERO = 1e-8  # below this tau2 is held fixed at its bound when computing standard errors


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
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    cuts = np.unique(np.append(np.asarray(steps, dtype=float), 1.0))
    group = np.searchsorted(cuts, dist.norm_cdf(-y / np.sqrt(v)), side="left")
    counts = np.bincount(group, minlength=cuts.size)
    if np.any(counts == 0):
        raise ValueError("a p-value interval of the selection model holds no study; the model is not identified")
    model = _Likelihood(y, v, group, cuts)
    theta = _maximise(model, model.start())
    ll = model.loglik(theta)
    n_delta = cuts.size - 1
    delta = np.concatenate([[1.0], theta[2:]])
    cov = _covariance(model, theta)
    se = float(np.sqrt(cov[0, 0]))
    delta_se = np.concatenate([[np.nan], np.sqrt(np.diag(cov)[2:])])
    crit = dist.norm_crit(dist.alpha_from_level(level))
    lrt = max(0.0, 2 * (ll - _ml_null_loglik(model)))
    at_bound = np.any(delta[1:] >= DELTA_MAX - 1e-3) or np.any(delta[1:] <= 1e-6)
    return SelectionModel(
        estimate=float(theta[0]), se=se, p_value=float(dist.norm_two_sided_p(theta[0] / se)),
        ci_lower=float(theta[0] - crit * se), ci_upper=float(theta[0] + crit * se), tau2=float(theta[1]),
        delta=delta, delta_se=delta_se, lrt=lrt, lrt_p=float(dist.chi2_sf(lrt, n_delta)), loglik=ll,
        steps=cuts, k_per_interval=counts,
        message="a delta estimate is at its bound; treat the selection model with caution" if at_bound else None,
    )


class _Likelihood:
    """The log-likelihood of theta = (mu, tau2, delta_2, ..., delta_m) with its gradient and Hessian.

    Study i contributes log delta_{g_i} + log N(y_i; mu, v_i + tau2) - log A_i, where A_i is its
    probability of publication: sum_j delta_j P(y_i falls in interval j). With u_ij = P(y_i > q_ij), the
    probability that study i's p-value is at most cut j, A_i = sum_j c_j u_ij with c_j = delta_j - delta_{j+1}
    (delta_{m+1} = 0; the last u is 1), so the derivatives of A follow from those of the normal tail u.
    """

    def __init__(self, y: np.ndarray, v: np.ndarray, group: np.ndarray, cuts: np.ndarray) -> None:
        self.y, self.v, self.group = y, v, group
        self.n_delta = cuts.size - 1
        quantiles = np.array([dist.norm_quantile(c) for c in cuts[:-1]])
        self.q = -np.sqrt(v)[:, None] * quantiles[None, :]  # y above q_ij <=> one-sided p <= cut j
        self.size = 2 + self.n_delta
        self.lower = np.array([-np.inf, 0.0] + [0.0] * self.n_delta)
        self.upper = np.array([np.inf, np.inf] + [DELTA_MAX] * self.n_delta)

    def start(self) -> np.ndarray:
        """The starting values: mean, a moment estimate of tau2 (kept off its bound), no selection."""
        y, v = self.y, self.v
        return np.concatenate([[np.mean(y)], [max(np.var(y) - np.mean(v), 0.0) + 0.001], np.ones(self.n_delta)])

    def _tails(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """s2, z and u = P(y > q) for the finite cuts, and A (probability of publication) per study."""
        s2 = self.v + theta[1]
        z = (theta[0] - self.q) / np.sqrt(s2)[:, None]
        u = dist.norm_cdf(z)
        delta = np.concatenate([[1.0], theta[2:]])
        c = delta[:-1] - delta[1:]
        return s2, z, u, u @ c + delta[-1], delta, c

    def loglik(self, theta: np.ndarray) -> float:
        """The log-likelihood; -inf where a delta of an occupied interval is 0 or A vanishes."""
        s2, _, _, a, delta, _ = self._tails(theta)
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = -0.5 * np.log(2 * np.pi * s2) - 0.5 * (self.y - theta[0]) ** 2 / s2
            value = float(np.sum(np.log(delta[self.group]) + dens - np.log(a)))
        return value if math.isfinite(value) else -math.inf

    def derivatives(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the log-likelihood at theta (an interior or boundary point)."""
        s2, z, u, a, delta, c = self._tails(theta)
        s = np.sqrt(s2)[:, None]
        phi = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        du = np.stack([phi / s, -phi * z / (2 * s * s)])                  # d u / d(mu, tau2)
        ddu = np.stack([-z * phi / s**2, phi * (z * z - 1) / (2 * s**3),  # d2 u / d mu2, d mu d tau2, d tau2^2
                        phi * z * (3 - z * z) / (4 * s**4)])
        n, m = self.size, self.n_delta
        da = np.empty((n, self.y.size))                                    # d A_i / d theta
        da[:2] = du @ c
        probs = np.diff(np.concatenate([u, np.ones((u.shape[0], 1))], axis=1), axis=1)  # P(interval j+1)
        da[2:] = probs.T
        dda = np.zeros((n, n, self.y.size))
        dda[0, 0], dda[0, 1], dda[1, 1] = ddu[0] @ c, ddu[1] @ c, ddu[2] @ c
        dprobs = np.diff(np.concatenate([du, np.zeros((2, u.shape[0], 1))], axis=2), axis=2)
        dda[:2, 2:] = dprobs.transpose(0, 2, 1)
        grad = -(da / a).sum(axis=1)
        hess = -(dda / a).sum(axis=2) + (da / a) @ (da / a).T
        r = self.y - theta[0]
        grad[0] += np.sum(r / s2)
        grad[1] += np.sum(-0.5 / s2 + 0.5 * r * r / s2**2)
        hess[0, 0] -= np.sum(1 / s2)
        hess[0, 1] -= np.sum(r / s2**2)
        hess[1, 1] += np.sum(0.5 / s2**2 - r * r / s2**3)
        counts = np.bincount(self.group, minlength=m + 1)[1:]
        grad[2:] += counts / delta[1:]
        hess[2:, 2:] -= np.diag(counts / delta[1:] ** 2)
        hess = np.triu(hess) + np.triu(hess, 1).T
        return grad, hess


def _maximise(model: _Likelihood, theta: np.ndarray) -> np.ndarray:
    """Projected Newton ascent within the bounds, with step halving (and a Levenberg shift where the
    Hessian is not negative definite); stops when a full step no longer changes theta."""
    value = model.loglik(theta)
    for _ in range(MAX_ITERATIONS):
        grad, hess = model.derivatives(theta)
        free = ~(((theta <= model.lower) & (grad < 0)) | ((theta >= model.upper) & (grad > 0)))
        step = np.zeros_like(theta)
        step[free] = _ascent_direction(grad[free], hess[np.ix_(free, free)])
        new, new_value = _line_search(model, theta, value, grad, step)
        if new_value < value or not np.any(new != theta):
            return theta
        change = np.max(np.abs(new - theta) / np.maximum(1.0, np.abs(theta)))
        theta, value = new, new_value
        if change < 1e-12:
            break
    return theta


def _ascent_direction(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """The Newton direction -H^-1 g where -H is positive definite, else that of -H + lambda D, D the
    magnitudes of -H's diagonal (the parameters' curvatures differ by up to 1e10 when variances are tiny,
    and a shift on one scale would stall the others)."""
    neg = -hess
    scales = np.maximum(np.abs(np.diag(neg)), 1e-12 * max(1e-12, float(np.max(np.abs(np.diag(neg))))))
    shift = 0.0
    for _ in range(60):
        try:
            chol = np.linalg.cholesky(neg + shift * np.diag(scales))
        except np.linalg.LinAlgError:
            shift = max(2 * shift, 1e-8)
            continue
        return np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
    return grad / scales


def _line_search(model: _Likelihood, theta: np.ndarray, value: float, grad: np.ndarray,
                 step: np.ndarray) -> tuple[np.ndarray, float]:
    """The first of the projected points theta + step / 2^h that increases the log-likelihood (Armijo);
    theta itself if none does."""
    for halvings in range(60):
        new = np.clip(theta + step / 2.0**halvings, model.lower, model.upper)
        new_value = model.loglik(new)
        if new_value >= value + 1e-4 * float(grad @ (new - theta)):
            return new, new_value
    return theta, value


def _covariance(model: _Likelihood, theta: np.ndarray) -> np.ndarray:
    """Inverse of the negative Hessian of the log-likelihood; with tau2 at 0 it is held fixed (dropped).

    NaN entries where the Hessian cannot be inverted.
    """
    keep = np.ones(theta.size, bool)
    keep[1] = theta[1] > TAU2_AT_ZERO
    out = np.full((theta.size, theta.size), np.nan)
    try:
        inv = np.linalg.inv(-model.derivatives(theta)[1][np.ix_(keep, keep)])
    except np.linalg.LinAlgError:
        return out
    if np.all(np.diag(inv) > 0):
        out[np.ix_(keep, keep)] = inv
    return out


def _ml_null_loglik(model: _Likelihood) -> float:
    """Log-likelihood of the ML random-effects model: the selection model at the ML fit with every delta = 1."""
    from metapsych.stats.rma import fit

    f = fit(model.y, model.v, estimator="ML")
    return model.loglik(np.concatenate([[f.estimate, f.tau2], np.ones(model.n_delta)]))
