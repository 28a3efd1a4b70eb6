"""Continuous-outcome effect sizes, reproducing metafor ``escalc`` exactly (arm1 minus arm2).

All functions are vectorised over numpy arrays and return :class:`Effects` in escalc's own
orientation: a positive value means a larger mean in arm 1. Orientation towards "therapy better"
happens later, in :mod:`metapsych.effects.compute`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metapsych.stats.distributions import log_gamma


@dataclass(frozen=True)
class Effects:
    """Effect sizes ``yi`` and sampling variances ``vi`` (same shape)."""

    yi: np.ndarray
    vi: np.ndarray


def _f(x: object) -> np.ndarray:
    return np.asarray(x, dtype=float)


def hedges_j(df: object) -> np.ndarray:
    """Exact small-sample correction of metafor's ``.cmicalc``: Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)).

    Computed on the log scale with ``lgamma`` so that it never overflows (meta's issue #42 with N > 343);
    NaN where ``df <= 1``, as in metafor.
    """
    m = _f(df)
    with np.errstate(invalid="ignore", divide="ignore"):
        j = np.exp(log_gamma(m / 2) - np.log(np.sqrt(m / 2)) - log_gamma((m - 1) / 2))
    return np.where(m <= 1, np.nan, j)


def pooled_sd(sd1: object, n1: object, sd2: object, n2: object) -> np.ndarray:
    """Pooled within-group SD with n1 + n2 - 2 degrees of freedom."""
    sd1, n1, sd2, n2 = _f(sd1), _f(n1), _f(sd2), _f(n2)
    return np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))


def smd_ls_variance(g: object, n1: object, n2: object) -> np.ndarray:
    """metafor's large-sample variance (``vtype="LS"``): 1/n1 + 1/n2 + g^2 / (2 (n1 + n2)), with g, not d."""
    g, n1, n2 = _f(g), _f(n1), _f(n2)
    return 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))


def smd_from_d(d: object, n1: object, n2: object) -> Effects:
    """Hedges' g = J * d and its LS variance, for an uncorrected standardized difference ``d``."""
    n1, n2 = _f(n1), _f(n2)
    g = hedges_j(n1 + n2 - 2) * _f(d)
    return Effects(g, smd_ls_variance(g, n1, n2))


def smd(m1: object, sd1: object, n1: object, m2: object, sd2: object, n2: object) -> Effects:
    """``escalc("SMD", vtype="LS")``: Hedges' g of arm 1 minus arm 2 with the exact correction."""
    d = (_f(m1) - _f(m2)) / pooled_sd(sd1, n1, sd2, n2)
    return smd_from_d(d, n1, n2)


def md(m1: object, sd1: object, n1: object, m2: object, sd2: object, n2: object) -> Effects:
    """``escalc("MD", vtype="LS")``: raw mean difference, variance sd1^2/n1 + sd2^2/n2."""
    sd1, n1, sd2, n2 = _f(sd1), _f(n1), _f(sd2), _f(n2)
    return Effects(_f(m1) - _f(m2), sd1**2 / n1 + sd2**2 / n2)


def smd_esc(m1: object, sd1: object, n1: object, m2: object, sd2: object, n2: object) -> Effects:
    """Hedges' g as metapsyTools computes it (R package ``esc``): the compatibility formula.

    ``esc::esc_mean_sd(es.type="g")`` uses the approximation g = d (1 - 3 / (4N - 9)) and reports the
    standard error of the *uncorrected* d, sqrt(N / (n1 n2) + d^2 / (2N)), N = n1 + n2. This is what the
    Metapsy databases' ``.g`` / ``.g_se`` columns hold. metapsych's own results use :func:`smd`.
    """
    n1, n2 = _f(n1), _f(n2)
    total = n1 + n2
    d = (_f(m1) - _f(m2)) / pooled_sd(sd1, n1, sd2, n2)
    g = d * (1 - 3 / (4 * total - 9))
    return Effects(g, total / (n1 * n2) + d**2 / (2 * total))
