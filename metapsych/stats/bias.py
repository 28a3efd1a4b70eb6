"""Small-study effects and publication bias, each as metafor computes it.

* ``regtest``: Egger-type regression test, metafor ``regtest(fit)`` (rma with sei as moderator); the
  intercept is the limit estimate (the effect of a study with se -> 0).
* ``ranktest``: Begg and Mazumdar's rank correlation, metafor ``ranktest`` (Kendall's tau of the
  standardised deviates and vi; exact p-value without ties, normal approximation with ties).
* ``trimfill``: Duval and Tweedie's trim-and-fill, metafor ``trimfill`` (L0 or R0, side from the sign of
  the Egger slope).
* ``fail_safe_n``: Rosenthal (Stouffer) and Orwin (unweighted mean, target = mean / 2), metafor ``fsn``.
* ``pet_peese``: PET (WLS on se) and PEESE (WLS on vi), with the conditional choice of Stanley and
  Doucouliagos as usually applied: PEESE when PET's intercept differs from 0 at two-sided 10%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from metapsych.stats import distributions as dist
from metapsych.stats.rma import RmaFit, fit
from metapsych.stats.tau2 import Control

# metafor's default rma.uni control, which trimfill() uses for its internal and final fits
METAFOR_DEFAULT = Control(threshold=1e-5, tol=float(np.finfo(float).eps) ** 0.25, maxiter=100)


@dataclass(frozen=True)
class RegTest:
    """Egger-type test: statistic of the sei slope (z, or t with df), its p-value, and the limit estimate."""

    statistic: float
    p_value: float
    df: float | None
    slope: float
    limit_estimate: float
    limit_ci_lower: float
    limit_ci_upper: float


def regtest(yi, vi, *, estimator: str = "REML", test: str = "z", level: float = 0.95) -> RegTest:
    """metafor ``regtest(rma(yi, vi, method=estimator, test=test))`` with predictor "sei"."""
    y, v = _arrays(yi, vi)
    _check_precisions_differ(v, "Egger's regression test")
    x = np.column_stack([np.ones_like(y), np.sqrt(v)])
    f = fit(y, v, X=x, estimator=estimator, test=test, level=level)
    return RegTest(
        statistic=float(f.statistic[1]), p_value=float(f.p_value[1]), df=f.df, slope=float(f.beta[1]),
        limit_estimate=float(f.beta[0]), limit_ci_lower=float(f.ci_lower[0]), limit_ci_upper=float(f.ci_upper[0]),
    )


@dataclass(frozen=True)
class RankTest:
    """Kendall's tau (tau-b) and its two-sided p-value; ``exact`` tells which p-value was used."""

    tau: float
    p_value: float
    exact: bool


def ranktest(yi, vi) -> RankTest:
    """metafor ``ranktest``: cor.test(yi*, vi, method="kendall", exact=TRUE) with yi* = (yi - b) / sqrt(vi - vb)."""
    y, v = _arrays(yi, vi)
    w = 1.0 / v
    theta = np.sum(w * y) / np.sum(w)
    ystar = (y - theta) / np.sqrt(v - 1.0 / np.sum(w))
    return kendall_test(ystar, v)


def kendall_test(a: np.ndarray, b: np.ndarray) -> RankTest:
    """R's cor.test(a, b, method="kendall", exact=TRUE): exact without ties, else tie-corrected normal.

    R computes the exact distribution as permutation counts divided by n!, which overflows from n = 171
    (metafor's ranktest then gives p = NaN); here it is computed as probabilities, exact up to
    KENDALL_EXACT_MAX_N. Beyond that the normal approximation (R's exact=FALSE; the exact distribution
    is within O(1/n) of it) is used and ``exact`` is False.
    """
    n = a.size
    if n < 2:
        return RankTest(float("nan"), float("nan"), False)
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("Kendall's test needs values without NaN")
    s = _kendall_s(a, b)
    n0 = n * (n - 1) / 2
    ta, tb = _tie_counts(a), _tie_counts(b)
    n1, n2 = float(np.sum(ta * (ta - 1)) / 2), float(np.sum(tb * (tb - 1)) / 2)
    denom = math.sqrt((n0 - n1) * (n0 - n2))
    if not denom > 0:  # one variable has a single value: no correlation to test (R gives NA for both)
        return RankTest(float("nan"), float("nan"), False)
    tau = s / denom
    if ta.size == 0 and tb.size == 0 and n <= KENDALL_EXACT_MAX_N:
        q = round((tau + 1) * n * (n - 1) / 4)
        # R: 1 - P(T <= q - 1) above the centre, P(T <= q) below; by symmetry both are a lower tail
        p = _kendall_lower_cdf(n)[n * (n - 1) // 2 - q if q > n * (n - 1) / 4 else q]
        return RankTest(tau, float(min(2 * p, 1.0)), True)
    return RankTest(tau, _kendall_normal_p(s, n, ta, tb), False)


KENDALL_EXACT_MAX_N = 500  # the exact distribution costs ~n^3 / 4 additions (0.12 s at n = 500)
KENDALL_PAIRS_PER_BLOCK = 1 << 21  # pairs compared at once by ``_kendall_s`` (bounds its memory)


def _kendall_s(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's S = sum over pairs i < j of sign(a_i - a_j) sign(b_i - b_j), exactly (a sum of integers),
    in blocks of rows so that memory stays bounded for thousands of studies."""
    n = a.size
    rows = max(1, KENDALL_PAIRS_PER_BLOCK // n)
    s = 0.0
    for start in range(0, n - 1, rows):
        stop = min(start + rows, n - 1)
        da = np.sign(a[start:stop, None] - a[None, start + 1:])
        db = np.sign(b[start:stop, None] - b[None, start + 1:])
        s += float(np.triu(da * db).sum())  # row i keeps the columns j > i
    return s


def _tie_counts(x: np.ndarray) -> np.ndarray:
    _, counts = np.unique(x, return_counts=True)
    return counts[counts > 1].astype(float)


@lru_cache(maxsize=8)
def _kendall_lower_cdf(n: int) -> np.ndarray:
    """P(T <= q) for q = 0 .. n(n-1)/4, T the number of concordant pairs of n under independence (the
    lower half of a distribution symmetric about n(n-1)/4).

    T is a sum of independent uniforms on 0..i-1 (i = 2..n), so each step averages i neighbouring
    probabilities: a difference of cumulative sums. Lower entries depend only on lower entries, so only
    the lower half is kept; there cumulative sums stay near or below 1/2 and the differences lose nothing visible
    in the far tail, where the probabilities grow quickly with q.
    """
    half = n * (n - 1) // 4
    probs = np.array([1.0])
    for i in range(2, n + 1):
        length = min(probs.size + i - 1, half + 1)
        cum = np.concatenate(([0.0], np.cumsum(probs)))
        upper = np.full(length, cum[-1])
        upper[:min(probs.size, length)] = cum[1:length + 1]
        upper[i - 1:] -= cum[:length - i + 1]
        probs = upper / i
    cdf = np.minimum(np.cumsum(probs), 1.0)
    cdf.setflags(write=False)  # shared by the cache
    return cdf


def _kendall_normal_p(s: float, n: int, ta: np.ndarray, tb: np.ndarray) -> float:
    var = (n * (n - 1) * (2 * n + 5) - np.sum(ta * (ta - 1) * (2 * ta + 5)) - np.sum(tb * (tb - 1) * (2 * tb + 5))) / 18
    var += np.sum(ta * (ta - 1)) * np.sum(tb * (tb - 1)) / (2 * n * (n - 1))
    if n > 2:
        var += np.sum(ta * (ta - 1) * (ta - 2)) * np.sum(tb * (tb - 1) * (tb - 2)) / (9 * n * (n - 1) * (n - 2))
    if var <= 0:
        return float("nan")
    return float(dist.norm_two_sided_p(s / math.sqrt(var)))


@dataclass(frozen=True)
class TrimFill:
    """Trim-and-fill: k0 missing studies on ``side``, the filled data and the model refitted to them."""

    k0: int
    se_k0: float
    side: str
    estimator: str
    yi: np.ndarray
    vi: np.ndarray
    filled: np.ndarray
    fit: RmaFit


def trimfill(
    yi, vi, *, estimator: str = "REML", k0_estimator: str = "L0", test: str = "z", level: float = 0.95,
    maxiter: int = 100,
) -> TrimFill:
    """metafor ``trimfill(rma(yi, vi, method=estimator, test=test))``.

    As in metafor, the side comes from the sign of the Egger slope (negative -> missing on the right), and
    the trimmed and filled fits use metafor's defaults (test="z", level 95%, control threshold 1e-5), so
    that the filled model reproduces metafor's numbers whatever ``test`` and ``level`` the original fit
    used (metafor 3.8's refit passes neither); with nothing to fill, the original fit (with ``test`` and
    ``level``) is returned. ``fit.level`` says which level the interval has.
    """
    if k0_estimator not in ("L0", "R0"):
        raise ValueError("k0_estimator must be 'L0' or 'R0'")
    y0, v0 = _arrays(yi, vi)
    _check_precisions_differ(v0, "trim-and-fill")
    slope = fit(y0, v0, X=np.column_stack([np.ones_like(y0), np.sqrt(v0)]), estimator=estimator).beta[1]
    side = "right" if slope < 0 else "left"
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y0, kind="stable")
    y, v = sign * y0[order], v0[order]
    k, k0, previous, se_k0 = y.size, 0, -1, 0.0
    for _ in range(maxiter):
        if k0 == previous:
            break
        previous = k0
        kept = k - k0
        beta = (_one_study_estimate(y[0], v[0]) if kept == 1
                else fit(y[:kept], v[:kept], estimator=estimator, control=METAFOR_DEFAULT).estimate)
        k0, se_k0 = _k0(y - beta, k, k0_estimator, rounding_is_zero=kept > 1)
    else:
        raise ValueError("trim-and-fill did not converge")
    if k0 > 0:
        y_all = np.concatenate([y0, sign * (2 * beta - y[k - k0:])])
        v_all = np.concatenate([v0, v[k - k0:]])
        refit = fit(y_all, v_all, estimator=estimator, control=METAFOR_DEFAULT)
    else:  # metafor returns the original fit itself
        y_all, v_all = y0, v0
        refit = fit(y0, v0, estimator=estimator, test=test, level=level)
    filled = np.concatenate([np.zeros(y0.size, bool), np.ones(k0, bool)])
    return TrimFill(k0=k0, se_k0=se_k0, side=side, estimator=k0_estimator, yi=y_all, vi=v_all, filled=filled,
                    fit=refit)


def _one_study_estimate(y: float, v: float) -> float:
    """metafor's estimate from one study, ((1/sqrt(w))^2 w) y with w = 1/vi, rounded step by step as R does.

    It differs from yi in the last bits more often than not, and trim-and-fill ranks the sign of that
    residual (with k = 3 and two studies trimmed, this changes the L0 estimate by 0.8 studies).
    """
    w = 1.0 / v
    s = 1.0 / math.sqrt(w)
    return (s * s * w) * y


def _k0(centred: np.ndarray, k: int, estimator: str, rounding_is_zero: bool = True) -> tuple[int, float]:
    """L0 or R0 estimate of the number of missing studies from the signed ranks of |yi - beta|."""
    # A residual that is zero up to rounding of beta counts as exactly zero (no sign), as it is in metafor
    # when beta is computed exactly; otherwise identical effects make the ranks follow rounding noise.
    # Not so where beta reproduces metafor's rounding (one study kept): its sign is metafor's.
    if rounding_is_zero:
        tiny = np.abs(centred) < 100 * np.finfo(float).eps * max(1.0, float(np.max(np.abs(centred))))
        centred = np.where(tiny, 0.0, centred)
    ranks = np.empty(k)
    ranks[np.argsort(np.abs(centred), kind="stable")] = np.arange(1, k + 1)
    signed = np.sign(centred) * ranks
    if estimator == "R0":
        # R0: the length of the run of positive residuals from the largest rank down, minus one (all positive:
        # k - 1). A zero residual ends the run, so identical effects (all zero) give 0. metafor's residuals
        # there are rounding noise: it gives 0 where that noise leaves a negative one and stops with an error
        # on most such data; counting zeros in the run made k0 = k - 1 and the trimming oscillate.
        ended = ranks[centred <= 0]
        k0 = k - ended.max() - 1 if ended.size else k - 1
        se = math.sqrt(2 * max(0.0, k0) + 2)
    else:
        sr = float(np.sum(signed[signed > 0]))
        k0 = (4 * sr - k * (k + 1)) / (2 * k - 1)
        var = (k * (k + 1) * (2 * k + 1) + 10 * k0**3 + 27 * k0**2 + 17 * k0 - 18 * k * k0**2 - 18 * k * k0
               + 6 * k**2 * k0) / 24
        se = 4 * math.sqrt(var) / (2 * k - 1) if var > 0 else float("nan")
    return int(max(0, _round_half_even(k0))), max(0.0, se)


def _round_half_even(x: float) -> float:
    """R's round(): halves go to the even integer."""
    return float(np.round(x))


@dataclass(frozen=True)
class FailSafeN:
    """Rosenthal's (Stouffer, alpha = 0.05) and Orwin's (target = mean / 2) fail-safe numbers."""

    rosenthal: float
    rosenthal_p: float
    orwin: float
    orwin_target: float


def fail_safe_n(yi, vi, alpha: float = 0.05) -> FailSafeN:
    """metafor ``fsn(yi, vi)`` and ``fsn(yi, vi, type="Orwin")`` with their defaults."""
    y, v = _arrays(yi, vi)
    k = y.size
    z_avg = abs(float(np.sum(y / np.sqrt(v))) / math.sqrt(k))
    rosenthal = max(0.0, k * (z_avg / float(dist.norm_crit(2 * alpha))) ** 2 - k)
    mean = float(np.mean(y))
    target = mean / 2
    orwin = math.inf if target == 0 else max(0.0, k * (mean - target) / target)
    return FailSafeN(
        rosenthal=_metafor_fsn_round(rosenthal), rosenthal_p=float(dist.norm_two_sided_p(z_avg) / 2),
        orwin=_metafor_fsn_round(orwin), orwin_target=target,
    )


def _metafor_fsn_round(x: float) -> float:
    """fsn rounds up unless the value is an integer to within sqrt(eps)."""
    if math.isinf(x):
        return x
    return float(math.ceil(x)) if abs(x - round(x)) >= np.finfo(float).eps ** 0.5 else float(round(x))


@dataclass(frozen=True)
class PetPeese:
    """PET (yi ~ sei) and PEESE (yi ~ vi) limit estimates, weighted by 1/vi (lm with weights, t tests)."""

    pet_estimate: float
    pet_ci_lower: float
    pet_ci_upper: float
    pet_p_value: float
    peese_estimate: float
    peese_ci_lower: float
    peese_ci_upper: float
    peese_p_value: float
    chosen: str


def pet_peese(yi, vi, level: float = 0.95) -> PetPeese:
    """PET-PEESE: PEESE is chosen when PET's intercept differs from 0 (two-sided p < 0.10), else PET."""
    y, v = _arrays(yi, vi)
    pet = _wls_intercept(y, v, np.sqrt(v), level)
    peese = _wls_intercept(y, v, v, level)
    return PetPeese(*pet, *peese, chosen="PEESE" if pet[3] < 0.10 else "PET")


def _wls_intercept(y, v, z, level) -> tuple[float, float, float, float]:
    """Intercept, CI and p-value of lm(y ~ z, weights = 1/v) (residual-variance scaled, t(k - 2))."""
    x = np.column_stack([np.ones_like(y), z])
    w = 1.0 / v
    xtwx_inv = np.linalg.inv(x.T @ (w[:, None] * x))
    beta = xtwx_inv @ x.T @ (w * y)
    df = y.size - 2
    sigma2 = float(np.sum(w * (y - x @ beta) ** 2)) / df
    se = math.sqrt(sigma2 * xtwx_inv[0, 0])
    crit = float(dist.t_crit(dist.alpha_from_level(level), df))
    b0 = float(beta[0])
    if se == 0:  # the effects lie exactly on the line: no residual variance to test against
        return b0, b0, b0, float("nan")
    return b0, b0 - crit * se, b0 + crit * se, float(dist.t_two_sided_p(b0 / se, df))


def _check_precisions_differ(v: np.ndarray, what: str) -> None:
    """The sei regression behind Egger's test and trim-and-fill's side needs unequal standard errors."""
    if v.size < 3 or np.ptp(v) == 0:
        raise ValueError(f"{what} needs at least 3 studies with different standard errors")


def _arrays(yi, vi) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(yi, dtype=float).ravel(), np.asarray(vi, dtype=float).ravel()
