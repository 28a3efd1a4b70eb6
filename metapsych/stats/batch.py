"""Many intercept-only meta-analyses in one vectorised pass (a report's grid of cells, ``pool --by``).

Studies of all analyses sit in one flat array, sorted by analysis; per-analysis sums are segment sums
(``np.add.reduceat``). Where a few hundred analyses or more all have the same number of studies (a
simulation grid, permutations), they sit in a k x G block instead, and the same sums, addition for
addition, are whole-row additions (``_Blocks``): the results do not depend on the layout. Every tau^2
estimator of ``metapsych.stats.tau2`` is evaluated for all analyses at once: closed forms directly, Fisher
scoring (ML, REML, EB) with a per-analysis convergence mask, and the Paule-Mandel and Q-profile equations
Q(tau2) = target by Newton's method, which for the convex, decreasing Q(tau2) climbs monotonically from
tau2 = 0 to the root.

ML and REML under a tight threshold switch to Newton steps where the maximum is interior: scoring converges
linearly (up to ~140 steps at threshold 1e-10 on a flat likelihood), Newton quadratically. metafor stops
scoring about threshold * r / (1 - r) short of the maximum (r the contraction per step); where that is more
than 1e-7 of tau2 (tiny tau2, very flat likelihoods) metafor's own path is replayed, so every reported
number stays within 1e-7 of metafor's (tested on random grids against the oracle). Results equal
``rma.fit`` per analysis to that tolerance (tested); the rare analysis whose metafor path does not converge
in maxiter steps (some never settle) is refitted by ``rma.fit`` with step halving, as the oracle retries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache

import numpy as np

from metapsych.stats import distributions as dist
from metapsych.stats.projection import segment_sum_p2
from metapsych.stats.rma import RmaFit, fit
from metapsych.stats.tau2 import (
    PATH_TOL,
    TIGHT,
    Control,
    canonical_estimator,
    confint_control,
    not_converged_message,
    step_halving,
    step_halving_message,
)

NEWTON_MAXITER = 500
NEWTON_AFTER = 2  # ML/REML scoring steps taken before Newton steps may replace them
NEWTON_RTOL = 1e-9  # Newton steps continue until they are this small relative to tau2 (tiny tau2)
HALVE_SCALAR = 16  # up to this many infeasible steps are halved one by one (fewer numpy calls)
LEAN_MAX = 32  # up to this many analyses on scoring steps take them in ``_scoring_paths`` (fewer numpy calls)
TR_PP_RTOL = 1e-4  # below this share of sum w^2, tr(PP) is summed in the cancellation-free form
WORK_ROWS = 8  # rows of the scratch array of ``_information``
BLOCK_MIN_ANALYSES = 256  # from this many analyses of equal size, the block layout (``_Blocks``)
Array = np.ndarray
Estimate = tuple[np.ndarray, np.ndarray, np.ndarray]  # tau2, its se, converged


@dataclass(frozen=True)
class _Layout:
    """Per-analysis bookkeeping over studies sorted by analysis: sums, broadcasts and products per analysis.

    Two layouts implement it: ``_Groups`` (flat arrays, any number of studies per analysis) and ``_Blocks``
    (every analysis has the same number of studies: k x G arrays). Weighted fits keep this bookkeeping
    alone (``bare``), not the ``_Segments`` that cache them, so that no reference cycle holds their
    per-study arrays until the next garbage collection (which leaked ~1 MB per 1,000-analysis batch and
    made fresh allocations page-fault).
    """

    starts: np.ndarray
    k: np.ndarray

    def sum(self, a: Array) -> Array:
        """Per-analysis sums of a per-study array, added exactly as ``np.add.reduceat`` adds them."""
        raise NotImplementedError

    def sum_rows(self, a: Array) -> Array | list[Array]:
        """``sum`` of each of the per-study arrays stacked in ``a``."""
        raise NotImplementedError

    def reduce(self, ufunc: np.ufunc, a: Array) -> Array:
        """Per-analysis ``ufunc`` reduction for ufuncs that reduce one value after the other (not add)."""
        raise NotImplementedError

    def spread(self, per_group: Array) -> Array:
        """A new per-study array of the values of each study's analysis."""
        raise NotImplementedError

    def broadcast(self, per_group: Array) -> Array:
        """Per-analysis values for arithmetic with per-study arrays (not to be written to)."""
        raise NotImplementedError

    def studies(self, a: Array, i: int) -> Array:
        """The values of analysis i in the per-study array ``a``."""
        raise NotImplementedError

    def flat(self, a: Array) -> Array:
        """A per-study array as one flat array, analysis after analysis."""
        raise NotImplementedError

    def bare(self) -> _Layout:
        """The bookkeeping alone."""
        raise NotImplementedError

    def sum_log(self, x: Array) -> Array:
        """sum(log(x)) per analysis for positive x, as the log of the product: one log per analysis
        instead of one per study (a log costs as much as five segment sums); the error is ~k * eps.
        Where a partial product could leave the normal range of doubles (min(x)^k or max(x)^k beyond
        1e-300 .. 1e300), the logs are summed instead."""
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            out = np.log(self.reduce(np.multiply, x))
            if _safe_products(float(x.min()), float(x.max()), self.k.max()):
                return out
            low = self.k * np.log10(np.minimum(self.reduce(np.minimum, x), 1.0))
            high = self.k * np.log10(np.maximum(self.reduce(np.maximum, x), 1.0))
        unsafe = ~((low > -300.0) & (high < 300.0))
        if unsafe.any():
            out[unsafe] = self.sum(np.log(x))[unsafe]
        return out


@dataclass(frozen=True)
class _Groups(_Layout):
    """Flat per-study arrays, analysis after analysis: segment sums by ``np.add.reduceat``."""

    def sum(self, a: Array) -> Array:
        return np.add.reduceat(a, self.starts)

    def sum_rows(self, a: Array) -> Array:
        """In one call (the same additions in the same order)."""
        return np.add.reduceat(a, self.starts, axis=1)

    def reduce(self, ufunc: np.ufunc, a: Array) -> Array:
        return ufunc.reduceat(a, self.starts)

    def spread(self, per_group: Array) -> Array:
        return np.repeat(per_group, self.k)

    broadcast = spread

    def studies(self, a: Array, i: int) -> Array:
        return a[self.starts[i]:self.starts[i] + self.k[i]]

    def flat(self, a: Array) -> Array:
        return a

    def bare(self) -> _Groups:
        return _Groups(self.starts, self.k)


@dataclass(frozen=True)
class _Blocks(_Layout):
    """Every analysis has the same number of studies m: per-study arrays are m x G (analysis i in column
    i), so that a per-analysis sum is a handful of whole-row additions (``_block_sum``) instead of one
    reduceat step per analysis, and per-analysis values broadcast against per-study arrays without a copy.
    Worth it from a few hundred analyses (a grid, permutations); fewer go flat (``_laid_out``). The rows
    hold the studies in the order in which numpy's pairwise summation adds them (``_block_order``)."""

    def sum(self, a: Array) -> Array:
        return _block_sum(a)

    def sum_rows(self, a: Array) -> list[Array]:
        """One at a time (stacked, the rows' strided sub-blocks would cost more than the calls saved)."""
        return [_block_sum(row) for row in a]

    def reduce(self, ufunc: np.ufunc, a: Array) -> Array:
        return ufunc.reduce(a[_block_order(int(self.k[0]))[1]], axis=0)  # in the studies' order, as reduceat

    def spread(self, per_group: Array) -> Array:
        return np.repeat(per_group[np.newaxis], int(self.k[0]), axis=0)

    def broadcast(self, per_group: Array) -> Array:
        return per_group

    def studies(self, a: Array, i: int) -> Array:
        return a[_block_order(int(self.k[0]))[1], i]

    def flat(self, a: Array) -> Array:
        return a[_block_order(int(self.k[0]))[1]].T.ravel()

    def bare(self) -> _Blocks:
        return _Blocks(self.starts, self.k)


_TREE = (0, 4, 2, 6, 1, 5, 3, 7)  # 8 partial sums in this order: each level of numpy's tree adds two halves


@lru_cache(maxsize=64)
def _block_order(m: int) -> tuple[Array, Array]:
    """(study in each row, row of each study) of an m x G block: the first study, then the others as
    ``_pairwise_sum`` takes them, every block of 8 that numpy sums in 8 partial sums in ``_TREE`` order
    (so that its tree, ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)), is three additions of contiguous
    halves), the rest in order."""

    def order(n: int) -> list[int]:
        if n < 8:
            return list(range(n))
        if n <= 128:
            whole = n - n % 8
            return [b + j for b in range(0, whole, 8) for j in _TREE] + list(range(whole, n))
        half = n // 2 - n // 2 % 8
        return order(half) + [half + i for i in order(n - half)]

    rows = np.array([0] + [1 + i for i in order(m - 1)])
    return rows, np.argsort(rows)


def _block_sum(a: Array) -> Array:
    """Column sums of an m x G block (rows in ``_block_order``), added exactly as ``np.add.reduceat`` adds
    each analysis' values: the first one plus numpy's pairwise sum of the others (``_pairwise_sum``)."""
    if a.shape[0] == 1:
        return a[0].copy()
    return a[0] + _pairwise_sum(a[1:])


def _pairwise_sum(a: Array) -> Array:
    """numpy's pairwise summation down the rows of ``a`` (``pairwise_sum`` in numpy/_core/src/umath/
    loops_utils.h.src), addition for addition, as whole-row additions: below 8 rows one after another
    (numpy starts from -0.0, and -0.0 + x is x); up to 128 rows in 8 interleaved partial sums (stored in
    ``_TREE`` order) added as a tree, then the remaining rows one by one; beyond, the two halves split at
    a multiple of 8. Only contiguous rows and blocks of rows are added (numpy's strided multi-dimensional
    loops cost several times more). Tested against ``np.add.reduceat`` bit for bit."""
    n = a.shape[0]
    if n < 8:
        total = a[0].copy()
        for i in range(1, n):
            total += a[i]
        return total
    if n <= 128:
        end = n - n % 8
        r = a[0:8] + a[8:16] if end > 8 else a[0:8]
        for i in range(16, end, 8):
            r += a[i:i + 8]
        r = r[:4] + r[4:]  # s0, s2, s1, s3 (s0 = r0 + r1, ...)
        r = r[:2] + r[2:]  # s0 + s1, s2 + s3
        total = r[0] + r[1]
        for i in range(end, n):
            total += a[i]
        return total
    half = n // 2 - n // 2 % 8
    return _pairwise_sum(a[:half]) + _pairwise_sum(a[half:])


def _safe_products(low: float, high: float, k: int) -> bool:
    """Whether every partial product of up to k values in [low, high] stays within 1e-300 .. 1e300."""
    if not low > 0:
        return False
    return k * math.log10(min(low, 1.0)) > -300.0 and k * math.log10(max(high, 1.0)) < 300.0


@dataclass(frozen=True)
class _Segments(_Layout):
    """The studies' effects and variances sorted by analysis, in one of the layouts (``_FlatSegments``,
    ``_BlockSegments``), and the fits several estimators share.

    ``order`` maps the sorted studies back to the caller's rows (None: they were sorted already, or this
    is a sub-problem from ``take``, whose results never go back to rows).
    """

    y: np.ndarray
    v: np.ndarray
    order: np.ndarray | None

    @cached_property
    def gid(self) -> np.ndarray:
        """The analysis of each study (0..G-1), in ``flat`` order."""
        return np.repeat(np.arange(self.k.size), self.k)

    @cached_property
    def groups(self) -> _Layout:
        """The bookkeeping alone, for the fits this object caches (see ``_Layout``)."""
        return self.bare()

    @cached_property
    def fe(self) -> _Wls:
        """The inverse-variance (common-effect, tau2 = 0) fit, which several estimators and Q need."""
        return _wls(self, 1.0 / self.v)

    def wls_at(self, tau2: np.ndarray) -> _Wls:
        """The weighted fit with weights 1 / (vi + tau2); the last one is kept, as the estimator and the
        assembly of the results both need the fit at the final tau2."""
        last = self.__dict__.get("_last_wls")
        if last is not None and np.array_equal(last[0], tau2):
            return last[1]
        fit = _wls(self, 1.0 / (self.v + self.broadcast(tau2)))
        self.__dict__["_last_wls"] = (tau2.copy(), fit)
        return fit

    def take(self, groups: np.ndarray) -> _Segments:
        """The sub-problem of the given analyses (sorted indices into this one), renumbered 0..len(groups)-1."""
        raise NotImplementedError


@dataclass(frozen=True)
class _FlatSegments(_Segments, _Groups):
    """Segments in the flat layout (``_Groups``)."""

    def take(self, groups: np.ndarray) -> _Segments:
        if groups.size == self.k.size:
            return self
        keep = np.zeros(self.k.size, bool)
        keep[groups] = True
        elements = np.repeat(keep, self.k)
        return _laid_out(self.y[elements], self.v[elements], self.k[groups], None)


@dataclass(frozen=True)
class _BlockSegments(_Segments, _Blocks):
    """Segments in the block layout (``_Blocks``)."""

    def take(self, groups: np.ndarray) -> _Segments:
        if groups.size == self.k.size:
            return self
        y, v, k = np.take(self.y, groups, axis=1), np.take(self.v, groups, axis=1), self.k[groups]
        if groups.size < BLOCK_MIN_ANALYSES:
            return _laid_out(self.flat(y), self.flat(v), k, None)
        return _BlockSegments(starts=np.cumsum(k) - k, k=k, y=y, v=v, order=None)


def _laid_out(y: Array, v: Array, k: Array, order: Array | None) -> _Segments:
    """Flat data sorted by analysis (``k`` studies each) in the cheaper layout: blocks where every analysis
    has the same number of studies and there are at least BLOCK_MIN_ANALYSES of them, else flat."""
    starts = np.cumsum(k) - k
    if k.size >= BLOCK_MIN_ANALYSES and k.min() == k.max():
        rows = _block_order(int(k[0]))[0]
        y, v = (np.take(a.reshape(k.size, -1).T, rows, axis=0) for a in (y, v))
        return _BlockSegments(starts=starts, k=k, y=y, v=v, order=order)
    return _FlatSegments(starts=starts, k=k, y=np.ascontiguousarray(y), v=np.ascontiguousarray(v), order=order)


def _segments(yi: np.ndarray, vi: np.ndarray, group_index: np.ndarray) -> _Segments:
    labels = np.asarray(group_index)
    y, v = np.asarray(yi, float), np.asarray(vi, float)  # made contiguous once, by ``_laid_out``
    if labels.size and np.all(labels[1:] >= labels[:-1]):  # already sorted (the usual case): no sort needed
        starts = np.flatnonzero(np.concatenate(([True], labels[1:] != labels[:-1])))
        return _laid_out(y, v, np.diff(np.append(starts, labels.size)), None)
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    return _laid_out(y[order], v[order], np.bincount(inverse), order)


def _by_unique(func: Callable[[Array], Array], df: Array) -> Array:
    """Evaluate an expensive special function of df once per distinct df (analyses share a few k's)."""
    values, inverse = np.unique(df, return_inverse=True)
    return np.asarray(func(values))[inverse]


@dataclass(frozen=True)
class _Wls:
    """Intercept-only weighted least squares per analysis, with the P-traces the estimators need."""

    groups: _Groups
    w: np.ndarray
    sw: np.ndarray
    beta: np.ndarray
    r: np.ndarray

    @cached_property
    def rss(self) -> np.ndarray:
        return self.groups.sum(self.w * self.r**2)

    @cached_property
    def tr_p(self) -> np.ndarray:
        return self.sw - self.groups.sum(self.w**2) / self.sw

    def tr_pv(self, a: np.ndarray) -> np.ndarray:
        return self.groups.sum(a * self.w * (1.0 - self.w / self.groups.broadcast(self.sw)))

    def sum_p2(self, a: np.ndarray | float = 1.0, b: np.ndarray | float = 1.0) -> np.ndarray:
        """sum_ij a_i b_j P_ij^2 within each analysis (without cancellation: see ``projection.grouped_sum_p2``)."""
        if np.ndim(a) == 0 and np.ndim(b) == 0 and a == 1.0 and b == 1.0:
            return self.tr_pp
        return segment_sum_p2(self.w, a, b, self.groups.sum, self.groups.spread)

    @cached_property
    def tr_pp(self) -> np.ndarray:
        """tr(PP) per analysis: the expanded sums sum w^2 - 2 sum w^3 / sum w + (sum w^2 / sum w)^2 where
        they lose nothing visible (tr(PP) > TR_PP_RTOL * sum w^2: error below ~k * eps / TR_PP_RTOL), the
        complement form of ``projection.segment_sum_p2`` where one study dominates the weights."""
        with np.errstate(over="ignore", invalid="ignore"):
            w2 = self.w * self.w
            sw2 = self.groups.sum(w2)
            w2 *= self.w
            return _trace_pp(self.groups, self.w, self.sw, sw2, self.groups.sum(w2), sw2 / self.sw)


def _trace_pp(groups: _Layout, w: Array, sw: Array, sw2: Array, sw3: Array, ratio: Array) -> Array:
    """tr(PP) = sum w^2 - 2 sum w^3 / sum w + ratio^2 (``ratio`` = sum w^2 / sum w, which the caller has)
    per analysis where that loses nothing visible (tr(PP) > TR_PP_RTOL * sum w^2: error below ~k * eps /
    TR_PP_RTOL), the cancellation-free complement form of ``projection.segment_sum_p2`` where one study
    dominates the weights (the expanded sums then cancel to ~eps (w_max / w_rest)^2, enough to move REML's
    steps on the way to tau2 = 0)."""
    fast = sw2 - 2.0 * sw3 / sw + ratio**2
    accurate = fast > TR_PP_RTOL * sw2
    if accurate.all():
        return fast
    return np.where(accurate, fast, segment_sum_p2(w, 1.0, 1.0, groups.sum, groups.spread))


def _wls(seg: _Segments, w: np.ndarray) -> _Wls:
    sw = seg.sum(w)
    beta = seg.sum(w * seg.y) / sw
    return _Wls(seg.groups, w, sw, beta, seg.y - seg.broadcast(beta))


@dataclass(frozen=True)
class BatchFit:
    """Intercept-only fits of G analyses; each field is an array over analyses (``weights``: per study).

    ``batch[i]`` (and iteration) gives the ``RmaFit`` of analysis i, analyses ordered by their sorted
    group labels. ``tau2_ci_*``, ``I2_ci_*`` and ``H2_ci_*`` are the Q-profile intervals (NaN where
    tau^2 is not estimable: EE, k = 1, non-convergence).
    """

    estimator: str
    test: str
    level: float
    k: np.ndarray
    converged: np.ndarray
    messages: tuple[str | None, ...]
    estimate: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    df: np.ndarray
    s2w: np.ndarray
    tau2: np.ndarray
    tau2_se: np.ndarray
    Q: np.ndarray
    Q_p: np.ndarray
    I2: np.ndarray
    H2: np.ndarray
    vt: np.ndarray
    pi_lower: np.ndarray
    pi_upper: np.ndarray
    tau2_ci_lower: np.ndarray
    tau2_ci_upper: np.ndarray
    ci_null: np.ndarray
    ub_at_limit: np.ndarray
    weights: np.ndarray = field(repr=False)
    study_order: np.ndarray = field(repr=False)
    starts: np.ndarray = field(repr=False)

    @property
    def tests(self) -> np.ndarray:
        """Per-analysis test actually used ("z" replaces t-based tests when k = 1, as metafor does)."""
        return np.where(self.k == 1, "z", self.test)

    @property
    def I2_ci(self) -> tuple[np.ndarray, np.ndarray]:
        """Q-profile I^2 interval (percent)."""
        lo, hi = self.tau2_ci_lower, self.tau2_ci_upper
        return 100.0 * lo / (self.vt + lo), 100.0 * hi / (self.vt + hi)

    @property
    def H2_ci(self) -> tuple[np.ndarray, np.ndarray]:
        """Q-profile H^2 interval."""
        return self.tau2_ci_lower / self.vt + 1.0, self.tau2_ci_upper / self.vt + 1.0

    def __len__(self) -> int:
        return int(self.k.size)

    def __iter__(self) -> Iterator[RmaFit]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int) -> RmaFit:
        one = np.array
        test = "z" if self.k[i] == 1 else self.test
        start = int(self.starts[i])
        df = None if test == "z" else float(self.df[i])
        tested = bool(self.se[i] > 0)  # as rma.fit's omnibus test: a zero variance (vb) leaves QM undefined
        return RmaFit(
            k=int(self.k[i]), p=1, estimator=self.estimator, test=test, level=self.level,
            converged=bool(self.converged[i]), message=self.messages[i],
            beta=one([self.estimate[i]]), se=one([self.se[i]]), vb=one([[self.se[i] ** 2]]),
            statistic=one([self.statistic[i]]), p_value=one([self.p_value[i]]),
            ci_lower=one([self.ci_lower[i]]), ci_upper=one([self.ci_upper[i]]), df=df, s2w=float(self.s2w[i]),
            tau2=float(self.tau2[i]), tau2_se=float(self.tau2_se[i]), tau=float(np.sqrt(self.tau2[i])),
            Q=float(self.Q[i]), Q_df=int(self.k[i]) - 1, Q_p=float(self.Q_p[i]), I2=float(self.I2[i]),
            H2=float(self.H2[i]), vt=float(self.vt[i]), QM=float(self.statistic[i] ** 2) if tested else math.nan,
            QM_df=1, QM_p=float(self.p_value[i]) if tested else math.nan, R2=None,
            weights=self.weights[self.study_order[start:start + self.k[i]]],
            pi_lower=float(self.pi_lower[i]), pi_upper=float(self.pi_upper[i]),
        )


def fit_many(
    yi: np.ndarray,
    vi: np.ndarray,
    group_index: np.ndarray,
    estimator: str = "REML",
    test: str = "z",
    level: float = 0.95,
    control: Control = TIGHT,
    qprofile: bool = True,
    retry: bool = True,
) -> BatchFit:
    """Fit ``rma(yi, vi)`` separately within every group of ``group_index`` in one vectorised pass.

    Analysis i of the result is the i-th distinct value of ``group_index`` in sorted order. With
    ``qprofile`` the Q-profile tau^2 intervals are computed too (vectorised). ``retry=False`` leaves an
    analysis that does not converge as failed, without ``rma.fit``'s retry with step halving (metafor's
    rma() itself does not retry).
    """
    method = canonical_estimator(estimator)
    if test not in ("z", "knha", "adhoc", "t"):
        raise ValueError(f"unknown test {test!r}")
    seg = _segments(yi, vi, group_index)
    if seg.y.size == 0 or not (_all_finite(seg.y) and _all_finite(seg.v)) or not seg.v.min() > 0:
        raise ValueError("yi and vi must be finite, non-empty, and vi positive")
    with np.errstate(divide="ignore", invalid="ignore"):
        tau2, tau2_se, converged = _estimate(seg, method, control)
        result = _assemble(seg, method, test, level, tau2, tau2_se, converged, control, qprofile)
    return _refit_failures(result, yi, vi, group_index, method, test, level, control) if retry else result


def _all_finite(a: Array) -> bool:
    """No NaN or infinity in ``a``: a finite sum proves it in one pass (NaN and inf propagate)."""
    return bool(np.isfinite(a.sum()) or np.isfinite(a).all())


def _estimate(seg: _Segments, method: str, control: Control) -> Estimate:
    """tau^2, its se (metafor's formula for the estimator) and convergence, per analysis."""
    g = seg.k.size
    if method == "EE":
        return np.zeros(g), np.full(g, np.nan), np.ones(g, bool)
    tau2, se, conv = _ESTIMATORS[method](seg, control)
    single = seg.k == 1
    if not single.any():
        return tau2, se, conv
    return np.where(single, 0.0, tau2), np.where(single, np.nan, se), conv | single


def _se_from(inner: np.ndarray) -> np.ndarray:
    return np.sqrt(np.where(inner >= 0, inner, np.nan))


def _hs(seg: _Segments, control: Control, small_sample: bool = False) -> Estimate:
    k = seg.k
    m = seg.fe
    factor = k / (k - 1) if small_sample else np.ones(k.size)
    raw = (factor * m.rss - k) / m.sw
    t = np.maximum(raw, 0.0)
    se = factor * _se_from((2 * (k - 1) + 4 * t * m.tr_p + 2 * t**2 * m.sum_p2()) / m.sw**2)
    return np.maximum(raw, 0.0), se, np.ones(k.size, bool)


def _hsk(seg: _Segments, control: Control) -> Estimate:
    return _hs(seg, control, small_sample=True)


def _he_raw(seg: _Segments) -> np.ndarray:
    """Hedges' (HE) tau^2 before truncation: (RSS - tr(PV)) / (k - 1) of the unweighted fit, where
    tr(PV) = sum v (k - 1) / k; also the start of ML, REML and EB (as in metafor)."""
    k = seg.k
    r = seg.y - seg.broadcast(seg.sum(seg.y) / k)
    r *= r
    return (seg.sum(r) - seg.sum(seg.v) * ((k - 1) / k)) / (k - 1)


def _he(seg: _Segments, control: Control) -> Estimate:
    k = seg.k
    m = _wls(seg, np.ones_like(seg.y))
    t = np.maximum(_he_raw(seg), 0.0)
    trpv = m.tr_pv(seg.v)
    se = _se_from((2 * m.sum_p2(seg.v, seg.v) + 4 * t * trpv + 2 * t**2 * (k - 1)) / (k - 1) ** 2)
    return t, se, np.ones(k.size, bool)


def _dl(seg: _Segments, control: Control) -> Estimate:
    k = seg.k
    m = seg.fe
    trp = m.tr_p
    raw = (m.rss - (k - 1)) / trp
    t = np.maximum(raw, 0.0)
    se = _se_from((2 * (k - 1) + 4 * t * trp + 2 * t**2 * m.sum_p2()) / trp**2)
    return t, se, np.ones(k.size, bool)


def _genq(seg: _Segments, control: Control) -> Estimate:
    k = seg.k
    m = seg.fe
    trp = m.tr_p
    raw = (m.rss - m.tr_pv(seg.v)) / trp
    t = np.maximum(raw, 0.0)
    v = seg.v
    se = _se_from((2 * m.sum_p2(v, v) + 4 * t * m.sum_p2(1.0, v) + 2 * t**2 * m.sum_p2()) / trp**2)
    return t, se, np.ones(k.size, bool)


def _sj(seg: _Segments, control: Control) -> Estimate:
    k = seg.k
    mean = seg.sum(seg.y) / k
    t0 = seg.sum((seg.y - seg.broadcast(mean)) ** 2) / k
    m = _wls(seg, 1.0 / (seg.v + seg.broadcast(t0)))
    raw = t0 * m.rss / (k - 1)
    t = np.maximum(raw, 0.0)
    v = seg.v
    inner = 2 * m.sum_p2(v, v) + 4 * t * m.sum_p2(1.0, v) + 2 * t**2 * m.sum_p2()
    return t, _se_from(t0**2 / (k - 1) ** 2 * inner), np.ones(k.size, bool)


def _pm_like_se(seg: _Segments, tau2: np.ndarray) -> np.ndarray:
    sw = seg.sum(1.0 / (seg.v + seg.broadcast(tau2)))
    return _se_from(2.0 * seg.k**2 / (seg.k - 1) / sw**2)


def _q_and_slope(seg: _Segments, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Q(tau2) per analysis and its derivative -sum w^2 r^2 (the weighted mean is optimal)."""
    m = _wls(seg, 1.0 / (seg.v + seg.broadcast(tau2)))
    return m.rss, -seg.sum((m.w * m.r) ** 2)


def _solve_q(seg: _Segments, target: np.ndarray, upper: np.ndarray, control: Control) -> tuple[np.ndarray, np.ndarray]:
    """Root of Q(tau2) = target in [0, upper] per analysis; NaN where Q(0) < target or Q(upper) > target.

    Returns (root, status) with status 0 = root found, -1 = Q(0) below target, 1 = Q(upper) above target.
    """
    q0, _ = _q_and_slope(seg, np.zeros(seg.k.size))
    qmax, _ = _q_and_slope(seg, upper)
    status = np.where(q0 < target, -1, np.where(qmax > target, 1, 0))
    t = np.zeros(seg.k.size)
    active = status == 0
    for _ in range(NEWTON_MAXITER):
        if not active.any():
            break
        q, slope = _q_and_slope(seg, t)
        step = np.where(active, -(q - target) / slope, 0.0)
        step = np.where(np.isfinite(step) & (step > 0), step, 0.0)
        t = np.minimum(t + step, upper)
        active &= step > 4 * np.finfo(float).eps * np.maximum(t, control.tol * 1e-3)
    return np.where(status == 0, t, np.nan), status


def _pm(seg: _Segments, control: Control, median: bool = False) -> Estimate:
    k = seg.k
    target = _by_unique(lambda d: dist.chi2_lower_quantile(0.5, d), k - 1) if median else (k - 1).astype(float)
    upper = _tau2_max(seg)
    root, status = _solve_q(seg, target, upper, control)
    solved = np.where(np.isfinite(target), status, 1)  # no replay where the target is not finite
    tau2 = np.where(status == -1, 0.0, _uniroot_stops(seg, root, solved, target, upper, control))
    return tau2, _pm_like_se(seg, tau2), status != 1


def _uniroot_stops(seg: _Segments, root: Array, status: Array, target: Array, upper: Array,
                   control: Control) -> Array:
    """The roots of Q(tau2) = target (``_solve_q``), replaced by where metafor's uniroot stops
    (``_uniroot_q``) where control.tol exceeds PATH_TOL of the root (a tiny tau2 or tau2 bound)."""
    for i in np.flatnonzero((status == 0) & (control.tol > PATH_TOL * root)).tolist():
        root[i] = _uniroot_q(seg, i, float(target[i]), float(upper[i]), control)
    return root


def _uniroot_q(seg: _Segments, i: int, target: float, upper: float, control: Control) -> float:
    """metafor's root of Q(tau2) = target for analysis i by R's uniroot (PM, Q-profile bounds): where
    control.tol is not small next to the root (a tiny tau2), the point where uniroot stops, not the exact
    root, is metafor's answer."""
    from metapsych.stats.roots import uniroot
    from metapsych.stats.tau2 import generalised_q

    y, v, x = seg.studies(seg.y, i), seg.studies(seg.v, i), np.ones((int(seg.k[i]), 1))
    return uniroot(lambda t: generalised_q(t, y, v, x) - target, 0.0, upper, control.tol, control.maxiter)


def _pmm(seg: _Segments, control: Control) -> Estimate:
    return _pm(seg, control, median=True)


def _segment_median(seg: _Segments, values: np.ndarray) -> np.ndarray:
    """Median of ``values`` within each analysis, vectorised."""
    values = seg.flat(values)
    ordered = values[np.lexsort((values, seg.gid))]
    lo = seg.starts + (seg.k - 1) // 2
    hi = seg.starts + seg.k // 2
    return 0.5 * (ordered[lo] + ordered[hi])


def _tau2_max(seg: _Segments) -> np.ndarray:
    """max(100, 10 mad(yi)^2) per analysis (metafor's PM search bound)."""
    med = _segment_median(seg, seg.y)
    mad = 1.4826 * _segment_median(seg, np.abs(seg.y - seg.broadcast(med)))
    return np.maximum(100.0, 10.0 * mad**2)


def _scoring_step(sub: _Segments, tau2: np.ndarray, method: str, newton: Array | None,
                  work: np.ndarray) -> tuple[Array, Array | None, Array | None]:
    """metafor's Fisher-scoring (ML, REML) or Morris (EB) update for the analyses in ``sub``.

    Where ``newton`` is set, ML and REML take the Newton-Raphson step instead if the observed information
    is positive (the log-likelihood is locally concave): it shares the scoring step's sign and converges
    quadratically where scoring crawls (a flat likelihood; up to ~140 steps at threshold 1e-10). Both are
    ascent steps from metafor's start, so they stop at the same maximum. Returns the steps, where they
    were Newton steps, and scoring's contraction per step |1 - observed / expected information| there
    (both None without Newton steps).
    """
    if method == "EB":
        return _morris_step(sub, tau2, work), None, None
    score, fisher, observed = _information(sub, tau2, method, work, observed=newton is not None)
    if newton is None:
        return score / fisher, None, None
    quadratic = newton & (observed > 0)
    return np.where(quadratic, score / observed, score / fisher), quadratic, np.abs(1.0 - observed / fisher)


def _rows(work: Array, sub: _Segments) -> Array:
    """The scratch memory ``work`` as WORK_ROWS per-study arrays of ``sub`` (each one contiguous)."""
    return work[:WORK_ROWS * sub.y.size].reshape((WORK_ROWS, *sub.y.shape))


def _weights_and_residuals(sub: _Segments, tau2: np.ndarray, rows: Array) -> tuple[Array, Array, Array]:
    """w = 1/(vi + tau2) and the residuals from the weighted mean, in rows 0 and 2 of ``rows``; and sum w.

    ``rows`` (scratch memory, see ``_rows``) is reused across iterations: fresh temporaries of this size
    cost more in page faults than the arithmetic. Sums of adjacent rows are taken together (``sum_rows``).
    """
    w, wy, r = rows[0], rows[1], rows[2]
    np.add(sub.broadcast(tau2), sub.v, out=w)
    np.divide(1.0, w, out=w)
    np.multiply(w, sub.y, out=wy)
    sw, swy = sub.sum_rows(rows[:2])
    np.subtract(sub.y, sub.broadcast(swy / sw), out=r)
    return w, r, sw


def _morris_step(sub: _Segments, tau2: np.ndarray, work: np.ndarray) -> np.ndarray:
    rows = _rows(work, sub)
    w, r, sw = _weights_and_residuals(sub, tau2, rows)
    a = rows[3]
    np.multiply(w, r, out=a)
    np.multiply(a, r, out=a)
    return (sub.sum(a) * sub.k / (sub.k - 1) - sub.k) / sw


def _information(sub: _Segments, tau2: np.ndarray, method: str, work: np.ndarray,
                 observed: bool) -> tuple[Array, Array, Array | None]:
    """Twice the ML/REML score, expected (Fisher) and, on request, observed information at tau2.

    REML: score y'PPy - tr(P), expected tr(PP), observed 2 y'PPPy - tr(PP); ML the same with W for P in
    the traces. For the intercept-only model Py = w * r, so every term is a segment sum: w^2, w^2 r^2,
    w^3 (REML or observed), w^2 r and w^3 r^2 (observed) in rows 3-7 of ``work``, summed together
    (``sum_rows``).
    """
    rows = _rows(work, sub)
    w, r, sw = _weights_and_residuals(sub, tau2, rows)
    w2, w2r2, w3, w2r, w3r2 = rows[3:8]
    np.multiply(w, w, out=w2)
    np.multiply(w2, r, out=w2r)
    np.multiply(w2r, r, out=w2r2)
    if method == "REML" or observed:
        np.multiply(w2, w, out=w3)
    if observed:
        np.multiply(w2r2, w, out=w3r2)
    sums = sub.sum_rows(rows[3:8 if observed else 6 if method == "REML" else 5])
    sw2, py_sq = sums[0], sums[1]
    if method == "ML":
        score, fisher = py_sq - sw, sw2
    else:
        ratio = sw2 / sw
        score, fisher = py_sq - (sw - ratio), _trace_pp(sub.groups, w, sw, sw2, sums[2], ratio)
    if not observed:
        return score, fisher, None
    return score, fisher, 2.0 * (sums[4] - sums[3] * sums[3] / sw) - fisher


def _step_until_feasible(t: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """tau2 + adj after metafor's ``while (tau2 + adj < 0) adj <- adj/2``, vectorised.

    Halving is exact in binary, so the result is t + adj / 2^j for the first feasible j, however it is
    found: a few infeasible steps (the usual case: analyses on the way to tau2 = 0) one by one in Python,
    many at once in lock-step (``_feasible_steps``).
    """
    new = t + adj
    bad = np.flatnonzero(new < 0)
    if bad.size > HALVE_SCALAR:
        new[bad] = t[bad] + _feasible_steps(t[bad], adj[bad])
    elif bad.size:
        for i, ti, ai in zip(bad.tolist(), t[bad].tolist(), adj[bad].tolist()):
            new[i] = ti + _feasible_step(ti, ai)
    return new


def _feasible_step(t: float, adj: float) -> float:
    """The first of adj, adj/2, adj/4, ... with t + step >= 0, for t >= 0 and adj < -t (from t = 0: no step).

    That is adj / 2^j for the least power of 2 with 2^j >= -adj / t (then t + step >= 0 exactly); the
    power is read off the rounded ratio, which puts it one short at most (where the ratio was rounded
    down onto a power of 2), so at most one more halving follows (more only if the ratio overflowed).
    """
    if not t > 0:
        return 0.0
    mantissa, exponent = math.frexp(-adj / t)
    step = math.ldexp(adj, (mantissa == 0.5) - exponent)
    while t + step < 0:
        step /= 2.0
    return step


def _feasible_steps(t: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """``_feasible_step`` for arrays, in lock-step."""
    positive = t > 0
    mantissa, exponent = np.frexp(-adj / np.where(positive, t, 1.0))
    step = np.where(positive, np.ldexp(adj, (mantissa == 0.5) - exponent), 0.0)
    while (still := t + step < 0).any():
        step = np.where(still, step / 2.0, step)
    return step


def _scoring(method: str) -> Callable[[_Segments, Control], Estimate]:
    def run(seg: _Segments, control: Control) -> Estimate:
        k = seg.k
        tau2 = np.where(k == 1, 0.0, np.maximum(0.0, _he_raw(seg)))
        idx = np.flatnonzero(k > 1)
        sub, start = seg.take(idx), tau2[idx]
        interior = _newton_allowed(seg, method, control)
        t, live = _maximise(sub, start, method, control, None if interior is None else interior[idx])
        tau2[idx] = t
        idx = idx[live]
        active = np.zeros(k.size, bool)
        active[idx] = True
        converged = ~active
        tau2 = np.maximum(tau2, 0.0)
        final = seg.wls_at(tau2)
        if method == "EB":
            return tau2, _pm_like_se(seg, tau2), converged
        zero = converged & (tau2 > control.threshold) & \
            (_loglik(seg.fe, seg.sum_log(seg.v), method)
             - _loglik(final, seg.sum_log(seg.v + seg.broadcast(tau2)), method) > control.tol)  # ll0check
        se = _scoring_se(final, method)
        if zero.any():
            tau2, se = np.where(zero, 0.0, tau2), np.where(zero, _scoring_se(seg.fe, method), se)
        return tau2, se, converged

    return run


def _maximise(sub: _Segments, start: Array, method: str, control: Control,
              interior: Array | None) -> tuple[Array, Array]:
    """Where metafor's ML/REML/EB iteration ends for each analysis: (tau2, still moving after maxiter).

    Without ``interior`` (a loose threshold, EB) metafor's path is followed. Otherwise analyses whose
    maximum is interior take Newton steps to it, and metafor's path is replayed only where its stopping
    point differs visibly from the maximum (``_path_sensitive``); the others (on the way to tau2 = 0)
    follow metafor's path in the same batch. The few analyses still on scoring steps once ``_iterate``
    hands them over, and a few replays, take their (remaining) steps together in ``_scoring_paths``.
    """
    work = np.empty(WORK_ROWS * sub.y.size)
    t, live, contraction, left = _iterate(sub, start, method, control, interior, work)
    tail = np.flatnonzero(live) if left else np.empty(0, np.intp)
    # Newton analyses still moving after maxiter (a small maxiter) are replayed too: whether metafor's own
    # path converges in maxiter steps decides (no Newton analysis is moving when the tail is handed over)
    replay = np.empty(0, np.intp) if interior is None else \
        np.flatnonzero(interior & (live | _path_sensitive(t, start, contraction, control)))
    if tail.size + replay.size > LEAN_MAX:  # many replays: vectorised, with their own tail
        t[replay], live[replay] = _maximise(sub.take(replay), start[replay], method, control, None)
        replay = replay[:0]
    follow = np.union1d(tail, replay)
    if follow.size:
        part, handed = sub.take(follow), np.isin(follow, tail)
        t[follow], live[follow] = _scoring_paths(
            _Groups(part.starts, part.k), part.flat(part.y), part.flat(part.v), np.where(handed, t[follow], start[follow]),
            np.where(handed, left, control.maxiter), method, control)
    return t, live


def _iterate(sub: _Segments, start: Array, method: str, control: Control, newton: Array | None,
             work: Array) -> tuple[Array, Array, Array, int]:
    """Scoring iterations from ``start``; (tau2, still moving, contraction) per analysis, and the steps left
    to the analyses still moving where they were handed over to ``_scoring_paths`` (0: none were).

    An analysis stops when its change is <= threshold (metafor's rule); one on Newton steps also needs the
    change to be below NEWTON_RTOL of tau2 (a tiny tau2), and stops a step early once its steps shrink
    quadratically. Converged analyses are dropped from the arithmetic once they are the majority; once no
    more than LEAN_MAX are moving and none of them on Newton steps (nor Morris's), they are handed over.
    The contraction is scoring's at the last point where the observed information was evaluated (NaN:
    never), one step before the end: close enough to the maximum for ``_path_sensitive``.
    """
    t, live, contraction = start.copy(), np.ones(start.size, bool), np.full(start.size, np.nan)
    if start.size == 0:  # every analysis has k = 1
        return t, live, contraction, 0
    idx, cur, now, alive, rates = np.arange(start.size), sub, t.copy(), live.copy(), contraction.copy()
    last = np.zeros(start.size)  # the previous Newton step's size (0: not a Newton step)
    left = 0
    for iteration in range(control.maxiter):  # metafor's maxiter steps (see tau2._fisher)
        if newton is not None and iteration >= NEWTON_AFTER and not (newton & alive).any():
            newton = None  # no analysis on Newton steps is moving any more (none starts again)
        if newton is None and method != "EB" and np.count_nonzero(alive) <= LEAN_MAX:
            left = control.maxiter - iteration
            break
        adj, quadratic, rate = _scoring_step(cur, now, method, newton if iteration >= NEWTON_AFTER else None, work)
        if rate is not None:
            np.copyto(rates, rate, where=alive)
        adj = np.where(alive & np.isfinite(adj), adj if control.stepadj == 1 else adj * control.stepadj, 0.0)
        new = _step_until_feasible(now, adj)
        change = np.abs(new - now)
        alive &= change > control.threshold
        if quadratic is not None:  # Newton: on to the maximum relative to tau2, one step early where safe
            rtol = NEWTON_RTOL * new  # new >= 0
            alive |= quadratic & (change > rtol)
            alive &= ~(quadratic & _newton_done(change, last, np.minimum(0.1 * control.threshold, rtol)))
            last = np.where(quadratic, change, 0.0)
        now = new
        moving = np.count_nonzero(alive)
        if moving == 0:
            break
        if 2 * moving < alive.size:
            t[idx], live[idx], contraction[idx] = now, alive, rates
            keep = np.flatnonzero(alive)
            idx, cur, now, alive, last, rates = idx[keep], cur.take(keep), now[keep], alive[keep], last[keep], \
                rates[keep]
            newton = None if newton is None else newton[keep]
    t[idx], live[idx], contraction[idx] = now, alive, rates
    return t, live, contraction, left


def _scoring_paths(groups: _Groups, y: Array, v: Array, tau2: Array, budget: Array, method: str,
                   control: Control) -> tuple[Array, Array]:
    """metafor's ML/REML Fisher scoring for a few analyses (flat ``y``, ``v`` in ``groups``), each from its
    ``tau2`` for at most its ``budget`` of steps: (tau2, still moving when its budget ran out).

    The lean twin of ``_iterate`` without Newton steps, for the tail of analyses on the way to tau2 = 0 and
    for replayed paths: per step a dozen numpy calls on the studies (``_PathBatch``), the per-analysis
    arithmetic on Python floats; a step of ``_iterate`` costs some 40 numpy calls however few analyses it
    has left. The floating-point operations are ``_iterate``'s in the same order (the flat layout's sums),
    so an analysis gets the same bits whichever loop takes it.
    """
    out_t, out_live = tau2.copy(), np.zeros(tau2.size, bool)
    index, t, left = list(range(tau2.size)), tau2.tolist(), budget.tolist()
    batch = _PathBatch(groups, y, v, method)
    while index:
        score, fisher = batch.information(t)
        keep = []
        for j, (tj, fj) in enumerate(zip(t, fisher)):
            adj = score[j] / fj if fj != 0 else math.nan
            adj = adj * control.stepadj if math.isfinite(adj) else 0.0
            new = tj + adj
            if new < 0:  # metafor halves the step until it is feasible; from 0 that ends at no step
                new = tj + _feasible_step(tj, adj)
            moving = abs(new - tj) > control.threshold
            t[j], left[j] = new, left[j] - 1
            if moving and left[j]:
                keep.append(j)
            else:
                out_t[index[j]], out_live[index[j]] = new, moving
        if len(keep) < len(index):
            batch = batch.take(keep, method)
            index, t, left = [index[j] for j in keep], [t[j] for j in keep], [left[j] for j in keep]
    return out_t, out_live


class _PathBatch:
    """The flat studies of the analyses that ``_scoring_paths`` moves, with scratch rows for a step (their
    views made once: a view costs a third of a small numpy call)."""

    __slots__ = ("groups", "y", "v", "w", "wy", "w2", "w2r2", "w3", "r", "first", "second")

    def __init__(self, groups: _Groups, y: Array, v: Array, method: str) -> None:
        rows = np.empty((6, y.size))
        self.groups, self.y, self.v = groups, y, v
        self.w, self.wy, self.w2, self.w2r2, self.w3, self.r = rows
        self.first, self.second = rows[:2], rows[2:4] if method == "ML" else rows[2:5]

    def take(self, keep: list[int], method: str) -> _PathBatch:
        """The batch of the analyses ``keep`` (positions, ascending)."""
        mask = np.zeros(self.groups.k.size, bool)
        mask[keep] = True
        studies, k = mask.repeat(self.groups.k), self.groups.k[mask]
        return _PathBatch(_Groups(np.cumsum(k) - k, k), self.y[studies], self.v[studies], method)

    def information(self, tau2: list[float]) -> tuple[list[float], list[float]]:
        """Twice the ML/REML score and the expected information at ``tau2`` per analysis, as
        ``_information`` computes them (sums of adjacent rows in one call). A zero sum w (tau2 = inf)
        gives NaN, as numpy's division would."""
        w, r, starts = self.w, self.r, self.groups.starts
        np.add(self.v, self._spread(tau2), out=w)
        np.reciprocal(w, out=w)  # 1 / (v + tau2), bit for bit
        np.multiply(w, self.y, out=self.wy)
        sw, swy = np.add.reduceat(self.first, starts, axis=1).tolist()
        np.subtract(self.y, self._spread([b / a if a else math.nan for a, b in zip(sw, swy)]), out=r)
        np.multiply(w, w, out=self.w2)
        np.multiply(self.w2, r, out=self.w2r2)
        np.multiply(self.w2r2, r, out=self.w2r2)
        if self.second.shape[0] == 2:  # ML
            sw2, py_sq = np.add.reduceat(self.second, starts, axis=1).tolist()
            return [p - s for p, s in zip(py_sq, sw)], sw2
        np.multiply(self.w2, w, out=self.w3)
        sw2, py_sq, sw3 = np.add.reduceat(self.second, starts, axis=1).tolist()
        score, fisher = [], []
        for s, s2, p, s3 in zip(sw, sw2, py_sq, sw3):
            ratio = s2 / s if s else math.nan
            score.append(p - (s - ratio))
            fisher.append(s2 - 2.0 * s3 / s + ratio * ratio if s else math.nan)
        inaccurate = [j for j, (f, s2) in enumerate(zip(fisher, sw2)) if not f > TR_PP_RTOL * s2]
        if inaccurate:  # as _trace_pp decides
            exact = segment_sum_p2(w, 1.0, 1.0, self.groups.sum, self.groups.spread).tolist()
            for j in inaccurate:
                fisher[j] = exact[j]
        return score, fisher

    def _spread(self, values: list[float]) -> Array | float:
        """Per-analysis values for arithmetic with the studies' (a single analysis' value as it is)."""
        return values[0] if len(values) == 1 else np.array(values).repeat(self.groups.k)


def _newton_done(change: Array, last: Array, tol: Array) -> Array:
    """After two Newton steps whose sizes shrink quadratically, the next one would be ~change^3 / last^2:
    when that is below ``tol`` the maximum is reached, one step early (``last`` 0: no Newton step before)."""
    return (change < last) & (change**3 < tol * last**2)


def _path_sensitive(tau2: Array, start: Array, r: Array, control: Control) -> Array:
    """Where metafor's own path matters: its stopping point is visibly off the maximum that Newton steps
    find exactly, or it may run out of iterations before it gets there.

    Scoring contracts towards the maximum by r = |1 - observed / expected information| per step, so it
    stops about threshold * r / (1 - r) away from it. Where that exceeds PATH_TOL * tau2 (a tiny tau2,
    or a flat likelihood with r near 1), tau2 and I^2 would differ from metafor's beyond PATH_TOL
    (relative). From ``start`` it needs about log(threshold / ((1 - r) |start - tau2|)) / log(r) steps;
    where that could exceed maxiter (half of it, for safety), metafor may stop with "did not converge".
    The caller replays metafor's path for these analyses (also where r is unknown).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.log(control.threshold / ((1.0 - r) * np.abs(start - tau2))) / np.log(r)
    return ~(r < 1.0) | (control.threshold * r >= PATH_TOL * tau2 * (1.0 - r)) | (steps > control.maxiter / 2)


def _scoring_se(m: _Wls, method: str) -> np.ndarray:
    """metafor's se of the ML (inverse expected information 2 / sum w^2) or REML (2 / tr(PP)) tau2."""
    return _se_from(2.0 / (m.groups.sum(m.w**2) if method == "ML" else m.sum_p2()))


def _newton_allowed(seg: _Segments, method: str, control: Control) -> np.ndarray | None:
    """Analyses whose ML/REML scoring may be accelerated by Newton steps (after the first two steps).

    Only under a tight threshold (<= 1e-8), where the stopping point is the maximum itself (to ~1e-10)
    whatever the path, and only where the maximum is interior (the score at tau2 = 0 is positive). With a
    loose threshold (metafor's default 1e-5), or on the way to tau2 = 0, the stopping point depends on the
    path (the halving steps towards 0 leave a tiny tau2 behind), so metafor's path is followed exactly.
    """
    if method not in ("ML", "REML") or control.threshold > 1e-8:
        return None
    m = seg.fe
    return seg.sum((m.w * m.r) ** 2) > (m.sw if method == "ML" else m.tr_p)


def _loglik(m: _Wls, sum_log_var: np.ndarray, method: str) -> np.ndarray:
    """metafor's ll0check log-likelihood, from the weighted fit ``m`` and sum(log(vi + tau2)) at that tau2."""
    k = m.groups.k
    ll = -0.5 * sum_log_var - 0.5 * m.rss
    if method == "ML":
        return ll - 0.5 * k * np.log(2 * np.pi)
    return ll - 0.5 * (k - 1) * np.log(2 * np.pi) - 0.5 * np.log(m.sw)


_ESTIMATORS = {"HS": _hs, "HSk": _hsk, "HE": _he, "DL": _dl, "GENQ": _genq, "SJ": _sj, "PM": _pm, "PMM": _pmm,
               "ML": _scoring("ML"), "REML": _scoring("REML"), "EB": _scoring("EB")}


def _assemble(seg: _Segments, method: str, test: str, level: float, tau2: Array, tau2_se: Array, converged: Array,
              control: Control, qprofile: bool) -> BatchFit:
    k = seg.k
    alpha = dist.alpha_from_level(level)
    all_converged, multi = bool(converged.all()), k > 1
    if not all_converged:
        tau2 = np.where(converged, tau2, 0.0)
    # the usual batch: every analysis converged, and none has a single study (no selection needed)
    nan_if_failed = (lambda a: a) if all_converged else lambda a: np.where(converged, a, np.nan)
    if_multi = (lambda a, _: a) if multi.all() else lambda a, b: np.where(multi, a, b)
    m = seg.wls_at(tau2)
    beta, vb = m.beta, 1.0 / m.sw
    if method == "GENQ":
        a = seg.fe
        beta = a.beta
        vb = seg.sum(a.w**2 * (seg.v + seg.broadcast(tau2))) / a.sw**2
    tbased = (test != "z") & multi
    s2w = np.ones(k.size)
    if test in ("knha", "adhoc"):
        rss = m.rss
        s2w = np.where(rss <= np.finfo(float).eps, 0.0, rss / (k - 1))
        if test == "adhoc":
            s2w = np.maximum(s2w, 1.0)
        s2w = if_multi(s2w, 1.0)
    se = np.sqrt(s2w * vb)
    stat = beta / se
    df = (k - 1).astype(float)
    if tbased.any():
        tcrit = _by_unique(lambda d: dist.t_crit(alpha, d), np.maximum(df, 1.0))
        crit = np.where(tbased, tcrit, dist.norm_crit(alpha))
        pval = np.where(tbased, dist.t_two_sided_p(stat, np.maximum(df, 1.0)), dist.norm_two_sided_p(stat))
    else:
        crit = np.full(k.size, dist.norm_crit(alpha))
        pval = dist.norm_two_sided_p(stat)
    fe = seg.fe
    q = if_multi(np.maximum(fe.rss, 0.0), 0.0)
    vt = if_multi((k - 1) / fe.tr_p, 0.0)
    if method == "EE":
        i2 = np.where(q > 0, np.maximum(0.0, 100.0 * (q - (k - 1)) / q), 0.0)
        h2 = if_multi(q / (k - 1), 1.0)
    else:
        i2 = if_multi(100.0 * tau2 / (vt + tau2), 0.0)
        h2 = if_multi(tau2 / vt + 1.0, 1.0)
    half = crit * np.sqrt(se**2 + tau2)
    no_pi = method == "EE"
    fit = fe if method == "GENQ" else m
    w_pct = seg.flat(100.0 * fit.w / seg.broadcast(fit.sw))
    if seg.order is None:
        weights, order = w_pct, np.arange(w_pct.size)
    else:
        weights, order = np.empty_like(w_pct), seg.order
        weights[order] = w_pct
    if qprofile:
        lo, hi, ci_null, at_limit = _qprofile(seg, tau2, alpha, control, converged & multi & (method != "EE"))
    else:  # four arrays, not one twice: callers may write into them
        lo, hi, ci_null, at_limit = np.full(k.size, np.nan), np.full(k.size, np.nan), np.zeros(k.size, bool), \
            np.zeros(k.size, bool)
    return BatchFit(
        estimator=method, test=test, level=level, k=k, converged=converged,
        messages=_messages(method, test, k, converged),
        estimate=nan_if_failed(beta), se=nan_if_failed(se), statistic=nan_if_failed(stat),
        p_value=nan_if_failed(pval), ci_lower=nan_if_failed(beta - crit * se),
        ci_upper=nan_if_failed(beta + crit * se), df=df, s2w=nan_if_failed(s2w), tau2=nan_if_failed(tau2),
        tau2_se=tau2_se, Q=q, Q_p=if_multi(dist.chi2_sf(q, np.maximum(k - 1, 1)), 1.0),
        I2=nan_if_failed(i2), H2=nan_if_failed(h2), vt=vt,
        pi_lower=np.full(k.size, np.nan) if no_pi else nan_if_failed(beta - half),
        pi_upper=np.full(k.size, np.nan) if no_pi else nan_if_failed(beta + half),
        tau2_ci_lower=lo, tau2_ci_upper=hi, ci_null=ci_null, ub_at_limit=at_limit,
        weights=weights, study_order=order, starts=seg.starts,
    )


def _messages(method: str, test: str, k: np.ndarray, converged: np.ndarray) -> tuple[str | None, ...]:
    """Per-analysis messages, worded as ``rma.fit`` words them."""
    single = [m for m in ("tau^2 cannot be estimated from one study" if method != "EE" else None,
                          "z test used since k = 1 (as metafor)" if test != "z" else None) if m]
    messages: list[str | None] = [None] * k.size
    for i in np.flatnonzero(k == 1).tolist():
        messages[i] = "; ".join(single) or None
    for i in np.flatnonzero(~converged).tolist():
        messages[i] = f"{method}: did not converge"
    return tuple(messages)


def _qprofile(seg: _Segments, tau2: Array, alpha: float, control: Control,
              estimable: Array) -> tuple[Array, Array, Array, Array]:
    """Vectorised metafor confint() Q-profile bounds; NaN where not estimable."""
    k = seg.k
    df = np.maximum(k - 1, 1)
    crit_u = _by_unique(lambda d: dist.chi2_upper_quantile(alpha / 2, d), df)
    crit_l = _by_unique(lambda d: dist.chi2_lower_quantile(alpha / 2, d), df)
    t_max = np.maximum(100.0, 10.0 * tau2)
    upper, ustat = _solve_q(seg, crit_l, t_max, control)
    lower, lstat = _solve_q(seg, crit_u, t_max, control)
    confint = confint_control(control)
    upper, lower = _uniroot_stops(seg, upper, ustat, crit_l, t_max, confint), \
        _uniroot_stops(seg, lower, lstat, crit_u, t_max, confint)
    ci_null = ustat == -1
    upper = np.where(ci_null, 0.0, np.where(ustat == 1, t_max, upper))
    lower = np.where(lstat == -1, 0.0, np.where(lstat == 1, t_max, lower))
    upper = np.where(lstat == 1, t_max, upper)
    at_limit = (ustat == 1) | (lstat == 1)
    return np.where(estimable, lower, np.nan), np.where(estimable, upper, np.nan), ci_null & estimable, \
        at_limit & estimable


def _refit_failures(result: BatchFit, yi: Array, vi: Array, group_index: Array, method: str, test: str, level: float,
                    control: Control) -> BatchFit:
    """Refit non-converged analyses one by one (``_refit``: metafor's retry with step halving); those that still
    do not converge get the NaN numbers of ``rma.fit``'s failed fit."""
    failed = np.flatnonzero(~result.converged)
    if failed.size == 0:
        return result
    from metapsych.stats.heterogeneity import confint_tau2

    _, inverse = np.unique(np.asarray(group_index), return_inverse=True)
    arrays = {name: getattr(result, name).copy() for name in (
        "converged", "estimate", "se", "statistic", "p_value", "ci_lower", "ci_upper", "s2w", "tau2", "tau2_se",
        "I2", "H2", "pi_lower", "pi_upper", "tau2_ci_lower", "tau2_ci_upper", "ci_null", "ub_at_limit", "weights",
        "Q", "Q_p", "vt")}
    messages = list(result.messages)
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    for g in failed:
        mask = inverse == g
        one = _refit(y[mask], v[mask], method, test, level, control)
        messages[g] = one.message
        arrays["converged"][g] = one.converged
        # all of fit()'s numbers: a fit that failed has none, not even Q (its NaN)
        for name, value in (("estimate", one.estimate), ("se", one.se[0]), ("statistic", one.statistic[0]),
                            ("p_value", one.p_value[0]), ("ci_lower", one.ci_lower[0]),
                            ("ci_upper", one.ci_upper[0]), ("s2w", one.s2w), ("tau2", one.tau2),
                            ("tau2_se", one.tau2_se), ("I2", one.I2), ("H2", one.H2), ("pi_lower", one.pi_lower),
                            ("pi_upper", one.pi_upper), ("Q", one.Q), ("Q_p", one.Q_p), ("vt", one.vt)):
            arrays[name][g] = value
        arrays["weights"][mask] = one.weights
        if one.converged:
            ci = confint_tau2(y[mask], v[mask], one)
            arrays["tau2_ci_lower"][g], arrays["tau2_ci_upper"][g] = ci.tau2_lower, ci.tau2_upper
            arrays["ci_null"][g], arrays["ub_at_limit"][g] = ci.ci_null, ci.ub_sign == ">"
    return replace(result, messages=tuple(messages), **arrays)


def _refit(y: Array, v: Array, method: str, test: str, level: float, control: Control) -> RmaFit:
    """``rma.fit`` of one analysis whose metafor path did not converge in the batch. Where ``rma.fit`` would
    first repeat that path to ``maxiter`` (up to 10,000 steps, about a second per analysis: chaotic paths
    that never settle exist) and then retry with step halving, only the retry is run, with the messages
    ``rma.fit`` gives."""
    if method not in ("ML", "REML", "EB") or control.stepadj != 1.0:
        return fit(y, v, estimator=method, test=test, level=level, control=control)
    one = fit(y, v, estimator=method, test=test, level=level, control=step_halving(control))
    if not one.converged:
        return replace(one, message=not_converged_message(method, control))
    return replace(one, message="; ".join(m for m in (step_halving_message(method), one.message) if m))
