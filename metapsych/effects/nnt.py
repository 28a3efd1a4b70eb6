"""Number needed to treat from Hedges' g (Furukawa & Leucht 2011), as metapsyTools reports it."""

from __future__ import annotations

import numpy as np

from metapsych.stats import distributions as dist

DEFAULT_CER = 0.2


def nnt_furukawa(g: object, cer: float = DEFAULT_CER) -> np.ndarray:
    """NNT = 1 / (Phi(|g| + Phi^-1(CER)) - CER); ``inf`` for g = 0.

    As in metapsyTools (``metapsyNNT(abs(g), cer)``), the NNT is computed from |g| and is always
    positive: for a negative g it is a number needed to harm, which the sign of g tells.
    """
    if not 0 < cer < 1:
        raise ValueError(f"control event rate must be in (0, 1), got {cer}")
    a = np.abs(np.asarray(g, dtype=float))
    with np.errstate(divide="ignore"):
        nnt = 1 / (dist.norm_cdf(a + dist.norm_quantile(cer)) - cer)
    return np.where(a == 0, np.inf, nnt)
