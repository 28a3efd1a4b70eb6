"""Tail probabilities and quantiles of the normal, t, chi-square and F distributions, without scipy.

``scipy.special`` costs about as much start-up time as pandas (its array-API layer imports numpy.f2py), and
``metapsych pool`` must start fast, so these are computed here in plain Python: the regularised incomplete
gamma function (series / Lentz continued fraction) for chi-square, the regularised incomplete beta
function (Lentz continued fraction) for t and F, ``math.erfc`` and ``statistics.NormalDist`` for the
normal, and safeguarded Newton iterations for quantiles. Agreement with scipy (and hence R) is tested to
1e-12 relative over wide grids. Argument order and tails follow R's ``pnorm``/``qt``/``pchisq``/``pf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

EPS = 1e-16
TINY = 1e-300
MAXITER = 10000
SMALL = 16  # up to this many values, scalar loops beat lock-step array iterations (same results)
_NORMAL = NormalDist()


def alpha_from_level(level: float) -> float:
    """Two-sided error rate for a confidence level given as a fraction (0.95) or percent (95).

    Mirrors metafor's ``.level``: 0 means alpha = 1, values >= 1 are percentages.
    """
    if level == 0:
        return 1.0
    if level >= 1:
        return (100.0 - level) / 100.0
    return 1.0 - level if level > 0.5 else level


def _elementwise(func: Callable[..., float], *args: ArrayLike) -> np.ndarray:
    """Apply a scalar function element by element with numpy broadcasting; NaN in, NaN out."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in args))
    flat = [a.ravel().tolist() for a in arrays]
    out = [func(*vals) if not any(math.isnan(x) for x in vals) else math.nan for vals in zip(*flat)]
    return np.asarray(out, dtype=float).reshape(arrays[0].shape)


# ----------------------------------------------------------------------------------------- normal


def norm_two_sided_p(z: ArrayLike) -> np.ndarray:
    """2 * P(Z > |z|) for a standard normal Z."""
    values = np.asarray(z, dtype=float)
    return _erfc(np.abs(values) / math.sqrt(2.0))


def _erfc(x: np.ndarray) -> np.ndarray:
    """``math.erfc`` element-wise (NaN in, NaN out): numpy has no erfc and scipy.special is slow to import."""
    return np.fromiter(map(math.erfc, x.ravel().tolist()), float, count=x.size).reshape(x.shape)


def norm_crit(alpha: float) -> float:
    """Upper alpha/2 quantile of the standard normal (qnorm(alpha/2, lower.tail=FALSE)); for the least
    positive double, whose half rounds to 0, the quantile of that double."""
    return -_NORMAL.inv_cdf(alpha / 2.0 or alpha)


# ------------------------------------------------------------------------- incomplete gamma (chi2)


def _gamma_pq(a: float, x: float) -> tuple[float, float]:
    """Regularised lower and upper incomplete gamma P(a, x), Q(a, x)."""
    if x <= 0:
        return 0.0, 1.0
    if math.isinf(x):
        return 1.0, 0.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(MAXITER):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * EPS:
                break
        p = total * math.exp(log_prefix)
        return p, 1.0 - p
    b = x + 1.0 - a
    c = 1.0 / TINY
    d = 1.0 / b
    h = d
    for i in range(1, MAXITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = TINY if abs(d) < TINY else d
        c = b + an / c
        c = TINY if abs(c) < TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < EPS:
            break
    q = math.exp(log_prefix) * h
    return 1.0 - q, q


def _chi2_pdf(x: float, df: float) -> float:
    if x <= 0:
        return 0.0
    a = df / 2.0
    return math.exp((a - 1.0) * math.log(x / 2.0) - x / 2.0 - math.lgamma(a)) / 2.0


def chi2_sf(x: ArrayLike, df: ArrayLike) -> np.ndarray:
    """Upper tail P(X > x) of chi-square with df degrees of freedom (pchisq(x, df, lower.tail=FALSE))."""
    xs, ds = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(df, dtype=float))
    half_x, d = xs.ravel() / 2.0, ds.ravel()
    finite = (d >= 1) & (d <= FINITE_SUM_MAX_DF) & (d == np.round(d)) & (half_x >= 0) & (half_x <= 700.0)
    if finite.all():  # the usual case: no selection needed
        return _gamma_q_integer(half_x, d.astype(int)).reshape(xs.shape)
    out = np.empty(d.shape)
    out[finite] = _gamma_q_integer(half_x[finite], d[finite].astype(int))
    out[~finite] = _gamma_q_array(d[~finite] / 2.0, half_x[~finite])
    return out.reshape(xs.shape)


FINITE_SUM_MAX_DF = 200


def _gamma_q_integer(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Q(df/2, x) for whole df as a finite sum of positive terms (Poisson probabilities), no iteration.

    Even df = 2m: exp(-x) sum_{j<m} x^j / j!. Odd df = 2m + 1: erfc(sqrt x) + sum_{j<m} exp(-x) x^(j+1/2) /
    Gamma(j + 3/2). Every term is at most 1 and, for x <= 700, exp(-x) does not underflow, so the sum keeps
    full relative precision in both tails; it needs m lock-step steps, so df is capped by the caller.
    """
    odd = (df & 1) == 1
    m = df >> 1
    term = np.exp(-x) * np.where(odd, np.sqrt(x) * (2.0 / math.sqrt(math.pi)), 1.0)
    total = np.where(odd, _erfc(np.sqrt(x)), 0.0) if odd.any() else np.zeros(x.shape)
    step: np.ndarray | float = np.where(odd, 1.5, 1.0)
    if odd.size and (odd.all() or not odd.any()):  # one parity (a grid's equal df): the same numbers, fewer calls
        step = 1.5 if odd[0] else 1.0
    common = int(m.min()) if m.size else 0  # terms every element takes (all where df is the same everywhere)
    for j in range(int(m.max(initial=0))):
        total = total + (term if j < common else np.where(j < m, term, 0.0))
        term = term * x / (j + step)
    return total


def _lgamma(values: np.ndarray) -> np.ndarray:
    """log Gamma element-wise (numpy has none), evaluated once per distinct value."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([math.lgamma(v) for v in distinct.tolist()])[inverse.ravel()]


def _gamma_q_array(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Regularised upper incomplete gamma Q(a, x) for arrays: the scalar algorithm, iterated in lock-step."""
    out = np.full(x.shape, np.nan)
    valid = (a > 0) & ~np.isnan(x)
    out[valid & (x <= 0)] = 1.0
    out[valid & np.isposinf(x)] = 0.0
    work = valid & (x > 0) & np.isfinite(x)
    series = work & (x < a + 1.0)
    fraction = work & ~series
    if series.any():
        aa, xx = a[series], x[series]
        term = 1.0 / aa
        total = term.copy()
        ap = aa.copy()
        for _ in range(MAXITER):
            ap = ap + 1.0
            term = term * xx / ap
            total = total + term
            if np.all(np.abs(term) < np.abs(total) * EPS):
                break
        out[series] = 1.0 - total * np.exp(-xx + aa * np.log(xx) - _lgamma(aa))
    if fraction.any():
        aa, xx = a[fraction], x[fraction]
        b = xx + 1.0 - aa
        c = np.full(aa.shape, 1.0 / TINY)
        d = 1.0 / b
        h = d.copy()
        active = np.ones(aa.shape, bool)
        for i in range(1, MAXITER):
            an = -i * (i - aa)
            b = b + 2.0
            d = an * d + b
            d = np.where(np.abs(d) < TINY, TINY, d)
            c = b + an / c
            c = np.where(np.abs(c) < TINY, TINY, c)
            d = 1.0 / d
            delta = d * c
            h = np.where(active, h * delta, h)
            active &= np.abs(delta - 1.0) >= EPS
            if not active.any():
                break
        out[fraction] = np.exp(-xx + aa * np.log(xx) - _lgamma(aa)) * h
    return out


@lru_cache(maxsize=4096)
def _chi2_quantile(prob: float, df: float, upper: bool) -> float:
    """x with P(X > x) = prob (upper) or P(X <= x) = prob, by safeguarded Newton."""
    if df <= 0 or not 0 < prob < 1:
        return math.nan

    def tail(x: float) -> float:
        p, q = _gamma_pq(df / 2.0, x / 2.0)
        return (q if upper else p) - prob

    sign = -1.0 if upper else 1.0  # d tail / dx = sign * pdf
    h = 2.0 / (9.0 * df)
    z = norm_crit(2.0 * prob) if upper else -norm_crit(2.0 * prob)
    start = df * max(1.0 - h + z * math.sqrt(h), 0.01) ** 3
    return _newton_bracketed(tail, lambda x: sign * _chi2_pdf(x, df), start, increasing=not upper)


def chi2_upper_quantile(prob: float, df: ArrayLike) -> np.ndarray:
    """x with P(X > x) = prob (qchisq(prob, df, lower.tail=FALSE))."""
    return _elementwise(lambda d: _chi2_quantile(float(prob), d, True), df)


def chi2_lower_quantile(prob: float, df: ArrayLike) -> np.ndarray:
    """x with P(X <= x) = prob (qchisq(prob, df, lower.tail=TRUE))."""
    return _elementwise(lambda d: _chi2_quantile(float(prob), d, False), df)


# ----------------------------------------------------------------------- incomplete beta (t and F)


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = TINY if abs(d) < TINY else d
    d = 1.0 / d
    h = d
    for m in range(1, MAXITER):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = TINY if abs(d) < TINY else d
        c = 1.0 + aa / c
        c = TINY if abs(c) < TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = TINY if abs(d) < TINY else d
        c = 1.0 + aa / c
        c = TINY if abs(c) < TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < EPS:
            break
    return h


def _beta_inc(a: float, b: float, x: float, one_minus_x: float) -> float:
    """Regularised incomplete beta I_x(a, b); ``one_minus_x`` is passed separately to keep precision."""
    if x <= 0:
        return 0.0
    if one_minus_x <= 0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
                 + b * math.log(one_minus_x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, one_minus_x) / b


def _t_two_sided(t: float, df: float) -> float:
    if df <= 0:
        return math.nan
    t2 = t * t
    if math.isinf(t2):
        return 0.0
    return _beta_inc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))


def t_two_sided_p(t: ArrayLike, df: ArrayLike) -> np.ndarray:
    """2 * P(T_df > |t|); a few values by the scalar algorithm, many in lock-step (same bits)."""
    ts, ds = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(df, dtype=float))
    if ts.size <= SMALL:
        return _elementwise(_t_two_sided, ts, ds)
    d = ds.ravel()
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # |t| > 1e154: t^2 = inf, p = 0
        t2 = ts.ravel() ** 2
        x, y = d / (d + t2), t2 / (d + t2)
    out = _beta_inc_array(d / 2.0, np.full(d.shape, 0.5), x, y)
    out[np.isinf(t2) & (d > 0)] = 0.0
    return out.reshape(ts.shape)


def _libm(func: Callable[[float], float], values: np.ndarray) -> np.ndarray:
    """A ``math`` function element-wise."""
    return np.fromiter(map(func, values.tolist()), float, count=values.size)


def _beta_inc_array(a: np.ndarray, b: np.ndarray, x: np.ndarray, one_minus_x: np.ndarray) -> np.ndarray:
    """Regularised incomplete beta I_x(a, b) for arrays: the scalar algorithm in lock-step, the same
    operations in the same order per element (an element stops where ``_beta_cf`` would), so both give
    the same bits and a value does not depend on the size of the array it was asked for in."""
    out = np.full(x.shape, np.nan)
    valid = (a > 0) & (b > 0) & ~np.isnan(x) & ~np.isnan(one_minus_x)
    out[valid & (x <= 0)] = 0.0
    out[valid & (x > 0) & (one_minus_x <= 0)] = 1.0
    work = valid & (x > 0) & (one_minus_x > 0)
    if not work.any():
        return out
    a, b, x, y = a[work], b[work], x[work], one_minus_x[work]
    # log and exp from the C library, as the scalar algorithm takes them (numpy's own SIMD versions, used
    # on some CPUs, may differ in the last bit)
    log_front = _lgamma(a + b) - _lgamma(a) - _lgamma(b) + a * _libm(math.log, x) + b * _libm(math.log, y)
    direct = x < (a + 1.0) / (a + b + 2.0)
    pa, pb, px = np.where(direct, a, b), np.where(direct, b, a), np.where(direct, x, y)
    value = _libm(math.exp, log_front) * _beta_cf_array(pa, pb, px) / pa
    out[work] = np.where(direct, value, 1.0 - value)
    return out


def _beta_cf_array(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Lentz continued fraction of the incomplete beta function, for arrays."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones(a.shape)
    d = 1.0 - qab * x / qap
    d = 1.0 / np.where(np.abs(d) < TINY, TINY, d)
    h = d.copy()
    active = np.ones(a.shape, bool)
    for m in range(1, MAXITER):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / np.where(np.abs(d) < TINY, TINY, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < TINY, TINY, c)
        h = np.where(active, h * (d * c), h)  # as the scalar ``h *= d * c``: same bits either way
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / np.where(np.abs(d) < TINY, TINY, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < TINY, TINY, c)
        delta = d * c
        h = np.where(active, h * delta, h)
        active &= np.abs(delta - 1.0) >= EPS
        if not active.any():
            break
    return h


def t_crit(alpha: float, df: ArrayLike) -> np.ndarray:
    """Upper alpha/2 quantile of t with df degrees of freedom (qt(alpha/2, df, lower.tail=FALSE))."""
    return t_from_two_sided_p(alpha, df)


def t_from_two_sided_p(p: ArrayLike, df: ArrayLike) -> np.ndarray:
    """|t| whose two-sided p-value is p (qt(p/2, df, lower.tail=FALSE)): 0 at p = 1, inf at p = 0.

    Every value comes from the same lock-step solver, whatever else is in the array, so a quantile never
    depends on the batch it was asked for in (reports must not change with what was cached); solved values
    are kept for the process (``_T_QUANTILES``), as a report asks for the same few df again and again.
    """
    if np.ndim(p) == 0 and np.ndim(df) == 0 and (hit := _T_QUANTILES.get((float(p), float(df)))) is not None:
        return np.array(hit)
    ps, ds = np.broadcast_arrays(np.asarray(p, dtype=float), np.asarray(df, dtype=float))
    prob, d = ps.ravel(), ds.ravel()
    out = np.full(prob.shape, math.nan)
    out[(d > 0) & (prob == 1.0)] = 0.0
    out[(d > 0) & (prob == 0.0)] = math.inf
    inside = (d > 0) & (prob > 0) & (prob < 1)
    large = inside & (d > LARGE_DF)
    out[large] = _t_crit_large_df(prob[large], d[large])
    solve = inside & ~large
    if solve.any():
        keys = list(zip(prob[solve].tolist(), d[solve].tolist()))
        missing = sorted(set(keys) - _T_QUANTILES.keys())
        if missing:
            if len(_T_QUANTILES) > 100_000:
                _T_QUANTILES.clear()
            found = _t_crit_array(np.array([a for a, _ in missing]), np.array([b for _, b in missing]))
            _T_QUANTILES.update(zip(missing, found.tolist()))
        out[solve] = [_T_QUANTILES[key] for key in keys]
    return out.reshape(ps.shape)


_T_QUANTILES: dict[tuple[float, float], float] = {}
LARGE_DF = 1e6  # above this, the Cornish-Fisher expansion in 1/df is exact to double precision


def _t_crit_large_df(alpha: np.ndarray, df: np.ndarray) -> np.ndarray:
    """t quantiles for huge df from the normal one: z + (z^3 + z) / (4 df) + (5z^5 + 16z^3 + 3z) / (96 df^2)
    (the next term is O(df^-3), below 1e-18 here), where the incomplete beta loses digits to lgamma."""
    z = np.array([norm_crit(a) for a in alpha.tolist()])
    return z + (z**3 + z) / (4.0 * df) + (5.0 * z**5 + 16.0 * z**3 + 3.0 * z) / (96.0 * df**2)


def _t_crit_array(alpha: np.ndarray, df: np.ndarray) -> np.ndarray:
    """t > 0 with 2 P(T > t) = alpha for many (alpha, df) at once: ``_newton_bracketed``'s steps in lock-step.

    Newton from the normal quantile inside a bracket that every step narrows, bisecting where a step would
    leave it; an element stops where the scalar solver stops (a zero, or a step below 4 eps relative).
    """
    x = np.array([norm_crit(a) for a in alpha.tolist()])
    lo, hi = np.zeros(x.shape), np.full(x.shape, math.inf)
    moving = np.ones(x.shape, bool)
    for _ in range(400):
        idx = np.flatnonzero(moving)
        if idx.size == 0:
            break
        xs = x[idx]
        fx = t_two_sided_p(xs, df[idx]) - alpha[idx]
        lo[idx] = np.where(fx > 0, xs, lo[idx])  # the tail decreases: x is left of the root
        hi[idx] = np.where(fx > 0, hi[idx], xs)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            new = xs + fx / (2.0 * _t_pdf_array(xs, df[idx]))
        outside = ~np.isfinite(new) | (new <= lo[idx]) | (new >= hi[idx])
        new = np.where(outside, np.where(np.isfinite(hi[idx]), (lo[idx] + hi[idx]) / 2.0,
                                         np.maximum(2.0 * xs, xs + 1.0)), new)
        x[idx] = np.where(fx == 0, xs, new)
        moving[idx] = (fx != 0) & (np.abs(new - xs) > 4 * EPS * np.abs(new))
    for i in np.flatnonzero(moving).tolist():  # far in the tail, where Newton steps in t creep
        x[i] = _t_crit_log(float(alpha[i]), float(df[i]), float(x[i]))
    return x


LOG_MAX = math.log(np.finfo(float).max)


def _t_crit_log(alpha: float, df: float, start: float) -> float:
    """``_t_crit_array``'s root for a tiny alpha, by Newton's method in log t on log p.

    There the tail falls like t^-df, so Newton steps in t gain about t/df each and the root (1e6 for
    p = 1e-200 with df 38) is out of reach; in log-log coordinates the tail is nearly a line. ``start`` is
    left of the root (the t solver approaches it from there). Where p underflows to 0 before the root
    (t^2 beyond the doubles) the root cannot be resolved: inf.
    """
    log_alpha = math.log(alpha)
    lo, hi = math.log(start), math.inf
    u = lo
    for _ in range(400):
        if u > LOG_MAX:  # t beyond the doubles
            return math.inf
        t = math.exp(u)
        p = _t_two_sided(t, df)
        if p == 0.0:
            if not math.isfinite(t * t):
                return math.inf
            hi = u
            u = (lo + hi) / 2.0
            continue
        gap = math.log(p) - log_alpha
        if gap == 0.0:
            return t
        if gap > 0:
            lo = u
        else:
            hi = u
        slope = -2.0 * math.exp(u + _t_log_pdf(t, df) - math.log(p))  # d log p / d log t
        new = u - gap / slope
        if not math.isfinite(new) or new <= lo or new >= hi:
            new = (lo + hi) / 2.0 if math.isfinite(hi) else u + 1.0
        if abs(new - u) <= 4 * EPS:
            return math.exp(new) if new <= LOG_MAX else math.inf
        u = new
    return math.exp(u) if u <= LOG_MAX else math.inf


def _t_log_pdf(t: float, df: float) -> float:
    """log of the t density at t > 0, without forming t^2 (finite up to the largest double)."""
    log_kernel = 2.0 * math.log(t) - math.log(df) + math.log1p(df / (t * t)) if t > 1.0 else math.log1p(t * t / df)
    return (math.lgamma((df + 1.0) / 2.0) - math.lgamma(df / 2.0) - 0.5 * math.log(df * math.pi)
            - (df + 1.0) / 2.0 * log_kernel)


def _t_pdf_array(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """The t density element-wise (``_t_pdf`` for arrays)."""
    return np.exp(_lgamma((df + 1.0) / 2.0) - _lgamma(df / 2.0) - 0.5 * np.log(df * math.pi)
                  - (df + 1.0) / 2.0 * np.log1p(t * t / df))


def norm_cdf(x: ArrayLike) -> np.ndarray:
    """P(Z <= x) for a standard normal Z (pnorm), accurate in both tails."""
    return 0.5 * _erfc(-np.asarray(x, dtype=float) / math.sqrt(2.0))


def norm_quantile(prob: float) -> float:
    """x with P(Z <= x) = prob (qnorm)."""
    return _NORMAL.inv_cdf(prob)


def log_gamma(x: ArrayLike) -> np.ndarray:
    """log |Gamma(x)| element-wise (lgamma); NaN where x is NaN or a pole (0, -1, ...)."""
    values = np.asarray(x, dtype=float)
    out = np.full(values.shape, math.nan)
    ok = np.isfinite(values) & ~((values <= 0) & (values == np.round(values)))
    out[ok] = _lgamma(values[ok])
    return out


def _f_sf(x: float, df1: float, df2: float) -> float:
    if df1 <= 0 or df2 <= 0:
        return math.nan
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    denom = df2 + df1 * x
    return _beta_inc(df2 / 2.0, df1 / 2.0, df2 / denom, df1 * x / denom)


def f_sf(x: ArrayLike, df1: ArrayLike, df2: ArrayLike) -> np.ndarray:
    """Upper tail of the F distribution (pf(x, df1, df2, lower.tail=FALSE)); a few values by the scalar
    algorithm, many in lock-step (same bits)."""
    if np.size(x) <= SMALL and np.size(df1) <= SMALL and np.size(df2) <= SMALL:
        return _elementwise(_f_sf, x, df1, df2)
    xs, d1, d2 = (a.ravel() for a in np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, df1, df2))))
    shape = np.broadcast(np.asarray(x), np.asarray(df1), np.asarray(df2)).shape
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        denom = d2 + d1 * xs
        out = _beta_inc_array(d2 / 2.0, d1 / 2.0, d2 / denom, d1 * xs / denom)
    out[(xs <= 0) & (d1 > 0) & (d2 > 0)] = 1.0
    out[np.isposinf(xs) & (d1 > 0) & (d2 > 0)] = 0.0
    return out.reshape(shape)


# ----------------------------------------------------------------------------------- root finding


def _newton_bracketed(f: Callable[[float], float], slope: Callable[[float], float], start: float,
                      increasing: bool) -> float:
    """Root of a monotone f on (0, inf) by Newton's method, falling back to bisection inside a bracket."""
    lo, hi = 0.0, math.inf
    x = max(start, 1e-300)
    for _ in range(400):
        fx = f(x)
        if fx == 0:
            return x
        below = (fx < 0) if increasing else (fx > 0)  # x is left of the root
        if below:
            lo = x
        else:
            hi = x
        d = slope(x)
        step = -fx / d if d != 0 and math.isfinite(d) else math.nan
        new = x + step
        if not math.isfinite(new) or new <= lo or new >= hi:
            new = (lo + hi) / 2.0 if math.isfinite(hi) else max(2.0 * x, x + 1.0)
        if abs(new - x) <= 4 * EPS * abs(new):
            return new
        x = new
    return x
