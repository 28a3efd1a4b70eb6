"""Leave-one-out fits and Viechtbauer-Cheung case diagnostics, as metafor's ``leave1out``,
``influence.rma.uni`` and ``baujat`` compute them, plus the metapsyTools/dmetar outlier rule.

All come from k refits without study i (same estimator, test, level and model matrix), so the numbers
match metafor's, including its flag for influential cases: |DFFITS| > 3 sqrt(p/(k-p)),
pchisq(Cook's D, p) > 0.5, hat > 3p/k, or any |DFBETAS| > 1. For an intercept-only model (the report's
cells) the k refits are one vectorised ``fit_many`` batch (k analyses of k - 1 studies) and the case
diagnostics are array expressions; a model with moderators is refitted study by study.

The hat values are computed here from the RmaFit fields (H = X (X'WX)^-1 X'W, W = diag(1/(vi + tau2))),
since the engine does not return them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metapsych.stats import distributions as dist
from metapsych.stats.rma import RmaFit, fit

BATCH_ELEMENTS = 1_000_000  # studies per fit_many call of the leave-one-out refits (bounds the memory)


@dataclass(frozen=True)
class LeaveOneOut:
    """Arrays (length k): the model refitted without study i, as metafor ``leave1out``."""

    estimate: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    Q: np.ndarray
    Q_p: np.ndarray
    tau2: np.ndarray
    I2: np.ndarray
    H2: np.ndarray
    s2w: np.ndarray  # the refits' Hartung-Knapp scale (1 for other tests), which the case diagnostics use


@dataclass(frozen=True)
class Influence:
    """Case diagnostics (length k arrays; dfbetas is (k, p)); ``influential`` is metafor's flag."""

    rstudent: np.ndarray
    dffits: np.ndarray
    cooks_d: np.ndarray
    cov_r: np.ndarray
    tau2_del: np.ndarray
    Q_del: np.ndarray
    hat: np.ndarray
    weight: np.ndarray
    dfbetas: np.ndarray
    influential: np.ndarray
    baujat_x: np.ndarray
    baujat_y: np.ndarray


@dataclass(frozen=True)
class CaseDiagnostics:
    """The full fit and everything derived from the leave-one-out refits."""

    full: RmaFit
    leave_one_out: LeaveOneOut
    influence: Influence


def case_diagnostics(
    yi, vi, X: np.ndarray | None = None, *, estimator: str = "REML", test: str = "z", level: float = 0.95
) -> CaseDiagnostics:
    """Fit the model and refit it k times without one study. ValueError if k < 3."""
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    k = y.size
    x = np.ones((k, 1)) if X is None else np.asarray(X, dtype=float)
    if k < x.shape[1] + 2:
        raise ValueError(f"leave-one-out diagnostics need at least {x.shape[1] + 2} studies, got {k}")
    full = fit(y, v, X=x, estimator=estimator, test=test, level=level)
    # A refit whose Hartung-Knapp scale is 0 (the remaining effects are identical) makes DFFITS and
    # DFBETAS infinite, as in metafor; they stay non-finite here and the payload reports them as null.
    if X is None or (x.shape[1] == 1 and np.all(x == 1.0)):
        refits = _batched_refits(y, v, estimator, test, level)
        with np.errstate(divide="ignore", invalid="ignore"):
            return CaseDiagnostics(full, refits, _intercept_influence(y, v, full, refits))
    fits = [fit(np.delete(y, i), np.delete(v, i), X=np.delete(x, i, axis=0), estimator=estimator, test=test,
                level=level) for i in range(k)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return CaseDiagnostics(full, _leave_one_out(fits), _influence(y, v, x, full, fits))


def _batched_refits(y: np.ndarray, v: np.ndarray, estimator: str, test: str, level: float) -> LeaveOneOut:
    """The k intercept-only fits without study i as ``fit_many`` batches (analysis i omits study i), in
    chunks of at most BATCH_ELEMENTS studies so that memory stays bounded for very large k."""
    from metapsych.stats.batch import fit_many

    k = y.size
    step = max(1, BATCH_ELEMENTS // (k - 1))
    fields = ("estimate", "se", "statistic", "p_value", "ci_lower", "ci_upper", "Q", "Q_p", "tau2", "I2", "H2", "s2w")
    parts: dict[str, list[np.ndarray]] = {name: [] for name in fields}
    for start in range(0, k, step):
        rows = np.arange(start, min(start + step, k))
        keep = np.arange(k)[None, :] != rows[:, None]
        index = np.broadcast_to(np.arange(k), keep.shape)[keep]
        group = np.repeat(np.arange(rows.size), k - 1)
        batch = fit_many(y[index], v[index], group, estimator=estimator, test=test, level=level, qprofile=False)
        for name in fields:  # per-analysis values only: the batch's per-study arrays are dropped with it
            parts[name].append(getattr(batch, name))
    return LeaveOneOut(**{name: np.concatenate(values) for name, values in parts.items()})


def _leave_one_out(refits: list[RmaFit]) -> LeaveOneOut:
    def col(name: str) -> np.ndarray:
        return np.array([float(np.atleast_1d(getattr(r, name))[0]) for r in refits])

    return LeaveOneOut(
        estimate=col("beta"), se=col("se"), statistic=col("statistic"), p_value=col("p_value"),
        ci_lower=col("ci_lower"), ci_upper=col("ci_upper"), Q=col("Q"), Q_p=col("Q_p"), tau2=col("tau2"),
        I2=col("I2"), H2=col("H2"), s2w=col("s2w"),
    )


def hat_values(x: np.ndarray, vi: np.ndarray, tau2: float) -> np.ndarray:
    """diag(X (X'WX)^-1 X'W) with W = diag(1/(vi + tau2)); values within 10 eps of 1 become 1."""
    w = 1.0 / (vi + tau2)
    h = np.einsum("ij,jk,ik->i", x, np.linalg.inv(x.T @ (w[:, None] * x)), x) * w
    return np.where(h > 1 - 10 * np.finfo(float).eps, 1.0, h)


def _influence(y, v, x, full: RmaFit, refits: list[RmaFit]) -> Influence:
    k, p = x.shape
    pred_full = x @ full.beta
    hat = hat_values(x, v, full.tau2)
    svb = np.linalg.inv(full.vb)
    n = range(k)
    tau2_del = np.array([r.tau2 for r in refits])
    s2w_del = np.array([r.s2w for r in refits])
    delpred = np.array([x[i] @ refits[i].beta for i in n])
    vdelpred = np.array([x[i] @ refits[i].vb @ x[i] for i in n])
    dffits = (pred_full - delpred) / np.sqrt(s2w_del * hat * (tau2_del + v))
    dfbetas = np.empty((k, p))
    cooks = np.empty(k)
    cov_r = np.empty(k)
    for i, r in enumerate(refits):
        vb_del = np.linalg.inv(x.T @ (x / (v + tau2_del[i])[:, None]))
        dfb = full.beta - r.beta
        dfbetas[i] = dfb / np.sqrt(s2w_del[i] * np.diag(vb_del))
        cooks[i] = dfb @ svb @ dfb
        cov_r[i] = np.linalg.det(r.vb) / np.linalg.det(full.vb)
    resid = y - delpred
    resid[np.abs(resid) < 100 * np.finfo(float).eps] = 0.0
    rstudent = resid / np.sqrt(v * s2w_del + vdelpred + tau2_del * s2w_del)
    influential = ((np.abs(dffits) > 3 * np.sqrt(p / (k - p))) | (_chi2_cdf(cooks, p) > 0.5)
                   | (hat > 3 * p / k) | np.any(np.abs(dfbetas) > 1, axis=1))
    return Influence(
        rstudent=rstudent, dffits=dffits, cooks_d=cooks, cov_r=cov_r, tau2_del=tau2_del,
        Q_del=np.array([r.Q for r in refits]), hat=hat, weight=full.weights, dfbetas=dfbetas,
        influential=influential & ~np.isnan(dffits),
        baujat_x=(y - pred_full) ** 2 / (full.tau2 + v), baujat_y=(delpred - pred_full) ** 2 / vdelpred,
    )


def _intercept_influence(y: np.ndarray, v: np.ndarray, full: RmaFit, loo: LeaveOneOut) -> Influence:
    """``_influence`` for an intercept-only model (p = 1), from the batched refits: X = 1, vb = se^2."""
    k = y.size
    pred_full = float(full.beta[0])
    hat = hat_values(np.ones((k, 1)), v, full.tau2)
    vdelpred = loo.se**2
    dffits = (pred_full - loo.estimate) / np.sqrt(loo.s2w * hat * (loo.tau2 + v))
    vb_del = 1.0 / _sum_weights(v, loo.tau2)
    dfb = pred_full - loo.estimate
    dfbetas = (dfb / np.sqrt(loo.s2w * vb_del))[:, None]
    cooks = dfb**2 / full.vb[0, 0]
    cov_r = vdelpred / full.vb[0, 0]
    resid = y - loo.estimate
    resid[np.abs(resid) < 100 * np.finfo(float).eps] = 0.0
    rstudent = resid / np.sqrt(v * loo.s2w + vdelpred + loo.tau2 * loo.s2w)
    influential = ((np.abs(dffits) > 3 * np.sqrt(1 / (k - 1))) | (_chi2_cdf(cooks, 1) > 0.5)
                   | (hat > 3 / k) | (np.abs(dfbetas[:, 0]) > 1))
    return Influence(
        rstudent=rstudent, dffits=dffits, cooks_d=cooks, cov_r=cov_r, tau2_del=loo.tau2, Q_del=loo.Q, hat=hat,
        weight=full.weights, dfbetas=dfbetas, influential=influential & ~np.isnan(dffits),
        baujat_x=(y - pred_full) ** 2 / (full.tau2 + v), baujat_y=(loo.estimate - pred_full) ** 2 / vdelpred,
    )


def _sum_weights(v: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """sum_j 1 / (v_j + tau2_i) for each tau2_i, in blocks of rows of at most BATCH_ELEMENTS values (the
    k x k matrix would take gigabytes for tens of thousands of studies)."""
    rows = max(1, BATCH_ELEMENTS // v.size)
    return np.concatenate([np.sum(1.0 / (v[None, :] + tau2[start:start + rows, None]), axis=1)
                           for start in range(0, tau2.size, rows)])


def _chi2_cdf(x: np.ndarray, df: int) -> np.ndarray:
    return 1.0 - dist.chi2_sf(x, df)


def ci_outliers(yi, vi, pooled_ci: tuple[float, float], level: float = 0.95) -> np.ndarray:
    """dmetar find.outliers: studies whose own CI lies wholly above or below the pooled CI."""
    y = np.asarray(yi, dtype=float)
    half = dist.norm_crit(dist.alpha_from_level(level)) * np.sqrt(np.asarray(vi, dtype=float))
    lo, hi = pooled_ci
    return (y + half < lo) | (y - half > hi)
