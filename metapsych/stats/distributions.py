"""Tail probabilities and quantiles of the normal, t, chi-square and F distributions.

Thin wrappers over ``scipy.special`` (cheap to import, unlike ``scipy.stats``) with the argument order
and tail conventions of R's ``pnorm``/``qt``/``pchisq``/``pf``, which metafor uses. Inputs may be scalars
or arrays; outputs are floats or arrays accordingly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special


def alpha_from_level(level: float) -> float:
    """Two-sided error rate for a confidence level given as a fraction (0.95) or percent (95).

    Mirrors metafor's ``.level``: 0 means alpha = 1, values >= 1 are percentages.
    """
    if level == 0:
        return 1.0
    if level >= 1:
        return (100.0 - level) / 100.0
    return 1.0 - level if level > 0.5 else level


def norm_two_sided_p(z: ArrayLike) -> np.ndarray:
    """2 * P(Z > |z|) for a standard normal Z."""
    return 2.0 * special.ndtr(-np.abs(np.asarray(z, dtype=float)))


def norm_crit(alpha: float) -> float:
    """Upper alpha/2 quantile of the standard normal (qnorm(alpha/2, lower.tail=FALSE))."""
    return float(-special.ndtri(alpha / 2.0))


def t_two_sided_p(t: ArrayLike, df: ArrayLike) -> np.ndarray:
    """2 * P(T_df > |t|)."""
    return 2.0 * special.stdtr(np.asarray(df, dtype=float), -np.abs(np.asarray(t, dtype=float)))


def t_crit(alpha: float, df: ArrayLike) -> np.ndarray:
    """Upper alpha/2 quantile of t with df degrees of freedom (qt(alpha/2, df, lower.tail=FALSE))."""
    return -special.stdtrit(np.asarray(df, dtype=float), alpha / 2.0)


def chi2_sf(x: ArrayLike, df: ArrayLike) -> np.ndarray:
    """Upper tail P(X > x) of chi-square with df degrees of freedom (pchisq(x, df, lower.tail=FALSE))."""
    return special.chdtrc(np.asarray(df, dtype=float), np.asarray(x, dtype=float))


def chi2_upper_quantile(prob: float, df: ArrayLike) -> np.ndarray:
    """x with P(X > x) = prob (qchisq(prob, df, lower.tail=FALSE))."""
    return special.chdtri(np.asarray(df, dtype=float), prob)


def chi2_lower_quantile(prob: float, df: ArrayLike) -> np.ndarray:
    """x with P(X <= x) = prob (qchisq(prob, df, lower.tail=TRUE))."""
    return special.chdtri(np.asarray(df, dtype=float), 1.0 - prob)


def f_sf(x: ArrayLike, df1: ArrayLike, df2: ArrayLike) -> np.ndarray:
    """Upper tail of the F distribution (pf(x, df1, df2, lower.tail=FALSE))."""
    return special.fdtrc(np.asarray(df1, dtype=float), np.asarray(df2, dtype=float), np.asarray(x, dtype=float))
