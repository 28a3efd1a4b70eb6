"""Permutation tests for meta-analytic models, as metafor's ``permutest.rma.uni``.

Moderator models: the rows of the model matrix are permuted (yi, vi stay), the model is refitted, and
the p-value of each coefficient is the share of permutations with |z| (or |t|) at least the observed
one; the omnibus p-value does the same for QM. Intercept-only models flip the signs of yi instead.
When the number of distinct permutations is at most ``iterations`` the test is exact (every distinct
permutation, as metafor), and the numbers equal metafor's. Otherwise ``iterations`` random permutations
(the first being the observed data) are drawn from a seeded numpy Generator: the p-values then differ from
R's, whose random-number stream is different, by Monte Carlo error only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from metapsych.stats.rma import RmaFit, fit
from metapsych.stats.tau2 import TIGHT, Control

COMPTOL = np.finfo(float).eps ** 0.5


@dataclass(frozen=True)
class PermutationTest:
    """Permutation p-values of the coefficients and of QM, with how they were obtained."""

    observed: RmaFit
    p_value: np.ndarray
    QM_p: float
    iterations: int
    exact: bool
    seed: int | None
    failed: int


def exact_count(x: np.ndarray | None, k: int) -> float:
    """Number of distinct permutations metafor's exact test would enumerate (2^k signs if intercept-only)."""
    if x is None or x.shape[1] == 1:
        return 2.0**k
    _, counts = np.unique(x, axis=0, return_counts=True)
    return math.factorial(k) / math.prod(math.factorial(int(c)) for c in counts)


def permutest(
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray | None = None,
    estimator: str = "REML",
    test: str = "z",
    level: float = 0.95,
    iterations: int = 1000,
    seed: int | None = 0,
    exact: bool | None = None,
    control: Control = TIGHT,
) -> PermutationTest:
    """Permutation test of ``fit(yi, vi, X, estimator, test)``; exact when feasible (or ``exact=True``)."""
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    x = None if X is None else np.asarray(X, dtype=float)
    observed = fit(y, v, X=x, estimator=estimator, test=test, level=level, control=control)
    if not observed.converged:
        raise ValueError(f"the model did not converge: {observed.message}")
    k = y.size
    count = exact_count(x, k)
    use_exact = bool(exact) or count <= iterations
    if use_exact and count > 5e6:
        raise ValueError(f"an exact test needs {count:.3g} permutations; too many")
    rng = np.random.default_rng(seed)
    if x is None or x.shape[1] == 1:
        stats, qms = _sign_flips(y, v, estimator, test, level, control, use_exact, iterations, rng)
    else:
        stats, qms = _row_permutations(y, v, x, estimator, test, level, control, use_exact, iterations, rng)
    ok = np.all(np.isfinite(stats), axis=1) & np.isfinite(qms)
    pval = np.mean(np.abs(stats[ok]) >= np.abs(observed.statistic) - COMPTOL, axis=0)
    qm_p = float(np.mean(qms[ok] >= observed.QM - COMPTOL))
    return PermutationTest(observed=observed, p_value=np.minimum(pval, 1.0), QM_p=qm_p, iterations=len(qms),
                           exact=use_exact, seed=None if use_exact else seed, failed=int((~ok).sum()))


def _sign_flips(y: np.ndarray, v: np.ndarray, estimator: str, test: str, level: float, control: Control,
                use_exact: bool, iterations: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Intercept-only models: all 2^k sign patterns (exact) or random ones, fitted in one batch."""
    from metapsych.stats.batch import fit_many

    k = y.size
    if use_exact:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=k)))[:, ::-1]
    else:
        signs = rng.choice((-1.0, 1.0), size=(iterations, k))
        signs[0] = 1.0
    groups = np.repeat(np.arange(signs.shape[0]), k)
    batch = fit_many((signs * y).ravel(), np.tile(v, signs.shape[0]), groups, estimator=estimator, test=test,
                     level=level, control=control, qprofile=False, retry=False)  # metafor skips what rma() cannot fit
    stat = np.where(batch.converged, batch.statistic, np.nan)
    return stat[:, None], stat**2


def _row_permutations(y: np.ndarray, v: np.ndarray, x: np.ndarray, estimator: str, test: str, level: float,
                      control: Control, use_exact: bool, iterations: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Moderator models: permute the rows of X and refit each time."""
    k = y.size
    if use_exact:
        perms = _distinct_row_permutations(x)
    else:
        perms = [np.arange(k)] + [rng.permutation(k) for _ in range(iterations - 1)]
    stats = np.full((len(perms), x.shape[1]), np.nan)
    qms = np.full(len(perms), np.nan)
    for i, perm in enumerate(perms):
        try:
            res = fit(y, v, X=x[perm], estimator=estimator, test=test, level=level, control=control, with_r2=False,
                      retry=False)  # metafor's permutest skips a permutation whose rma() does not converge
        except ValueError:
            continue
        if res.converged:
            stats[i], qms[i] = res.statistic, res.QM
    return stats, qms


def _distinct_row_permutations(x: np.ndarray) -> list[np.ndarray]:
    """Every distinct arrangement of the rows of x (equal rows are interchangeable), without k! work."""
    _, pattern = np.unique(x, axis=0, return_inverse=True)
    pattern = pattern.ravel()
    rows_of = {int(p): [int(r) for r in np.flatnonzero(pattern == p)] for p in np.unique(pattern)}
    counts = {p: len(rows) for p, rows in rows_of.items()}
    out = []
    for arrangement in _multiset_permutations(counts, pattern.size):
        out.append(np.array([rows_of[p][0] for p in arrangement]))
    return out


def _multiset_permutations(counts: dict[int, int], length: int) -> Iterator[tuple[int, ...]]:
    """Yield each distinct sequence using every key of ``counts`` exactly that many times."""
    if length == 0:
        yield ()
        return
    for key in sorted(counts):
        if counts[key]:
            counts[key] -= 1
            for rest in _multiset_permutations(counts, length - 1):
                yield (key, *rest)
            counts[key] += 1
