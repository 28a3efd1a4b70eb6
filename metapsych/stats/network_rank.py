"""Ranking treatments in a network: P-scores (Rücker & Schwarzer 2015).

P_i = mean over j != i of Phi((d_i - d_j) / se(d_i - d_j)) when larger effects are better (the signs
flip when small values are good). Under the normal approximation of the estimates, the expected rank
of treatment i is 1 + sum_j P(j better than i), so the analytic SUCRA, (n - mean rank) / (n - 1),
equals the P-score exactly; metapsych reports that SUCRA (no simulation).
"""

from __future__ import annotations

import numpy as np

from metapsych.stats.distributions import norm_cdf


def p_scores(d: np.ndarray, cov: np.ndarray, small_values_good: bool) -> np.ndarray:
    """P-score of every treatment from effects ``d`` (any common reference) and their covariance."""
    n = d.size
    if n < 2:
        return np.ones(n)
    var = np.diag(cov)
    se = np.sqrt(np.maximum(var[:, None] + var[None, :] - 2.0 * cov, 0.0))
    diff = d[:, None] - d[None, :]
    if small_values_good:
        diff = -diff
    off = ~np.eye(n, dtype=bool)
    prob = np.zeros((n, n))
    prob[off] = norm_cdf(diff[off] / se[off])
    return prob.sum(axis=1) / (n - 1)
