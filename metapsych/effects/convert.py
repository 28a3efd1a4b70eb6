"""Conversions to Hedges' g: test statistics, confidence intervals, odds ratios, cluster designs.

Every function is vectorised and sign-free where the input has no sign (F, p): the caller orients
the result. g from statistics follows metafor 3.8 ``escalc("SMD", ti=...)``: d = t sqrt(1/n1 + 1/n2),
then the exact J and the LS variance of :mod:`continuous`.
"""

from __future__ import annotations

import numpy as np

from metapsych.effects.continuous import Effects, smd_from_d
from metapsych.stats import distributions as dist

LOGIT_SCALE = np.sqrt(3.0) / np.pi


def _f(x: object) -> np.ndarray:
    return np.asarray(x, dtype=float)


def smd_from_t(t: object, n1: object, n2: object) -> Effects:
    """g from an independent-samples t statistic (metafor ``escalc("SMD", ti=, n1i=, n2i=)``)."""
    n1, n2 = _f(n1), _f(n2)
    return smd_from_d(_f(t) * np.sqrt(1 / n1 + 1 / n2), n1, n2)


def t_from_f(f: object) -> np.ndarray:
    """|t| of a two-group comparison from F(1, df): t = sqrt(F)."""
    return np.sqrt(_f(f))


def t_from_p(p: object, n1: object, n2: object) -> np.ndarray:
    """|t| from an exact two-sided p-value of a t test with n1 + n2 - 2 degrees of freedom."""
    return dist.t_from_two_sided_p(_f(p), _f(n1) + _f(n2) - 2)


def se_from_ci(lower: object, upper: object, level: float = 0.95) -> np.ndarray:
    """Standard error of a normal-theory (symmetric) CI: (upper - lower) / (2 z_{(1+level)/2})."""
    return (_f(upper) - _f(lower)) / (2 * dist.norm_crit(1 - level))


def logor_to_smd(yi: object, vi: object) -> Effects:
    """Logit (Hasselblad-Hedges) method: d = log OR sqrt(3)/pi, v = v_logOR 3/pi^2 (metafor "OR2DL")."""
    return Effects(_f(yi) * LOGIT_SCALE, _f(vi) * LOGIT_SCALE**2)


def smd_to_logor(yi: object, vi: object) -> Effects:
    """Inverse of :func:`logor_to_smd`: log OR = d pi/sqrt(3), v = v_d pi^2/3 (metafor "D2ORL")."""
    return Effects(_f(yi) / LOGIT_SCALE, _f(vi) / LOGIT_SCALE**2)


def design_effect(cluster_size: object, icc: object) -> np.ndarray:
    """Design effect of a cluster-randomised or group-delivered arm: 1 + (m - 1) ICC."""
    return 1 + (_f(cluster_size) - 1) * _f(icc)


def effective_n(n: object, cluster_size: object, icc: object) -> np.ndarray:
    """Effective sample size n / (1 + (m - 1) ICC) (Cochrane Handbook 23.1.4)."""
    return _f(n) / design_effect(cluster_size, icc)
