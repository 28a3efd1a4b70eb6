"""Comparison-adjusted funnel plot data and its Egger test (netmeta ``funnel.netmeta`` / ``metabias.netmeta``).

Chaimani et al. (2013): every contrast is oriented by a user-given ``order`` of the treatments (e.g. from
oldest to newest, so that a small-study effect favouring newer treatments shows as asymmetry) and centred
at the common-effect direct estimate of its comparison (the inverse-variance mean of all contrasts of that
comparison, multi-arm ones included at their own variances). Egger's test is meta's: the weighted
regression of the centred effect on its standard error (weights 1/se^2), whose slope (the "bias", equal to
the intercept of the standardised regression) is tested with t on k - 2 df.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metapsych.stats import distributions as dist
from metapsych.stats.network_data import build_network_data


@dataclass(frozen=True)
class AdjustedFunnel:
    """Centred contrasts (treat1 earlier in ``order`` than treat2) and Egger's test on them."""

    order: tuple[str, ...]
    study: tuple[str, ...]
    comparison: tuple[str, ...]
    yi_adj: np.ndarray
    se: np.ndarray
    egger_bias: float
    egger_se: float
    egger_statistic: float
    egger_df: int
    egger_p: float


def comparison_adjusted_funnel(
    study: Sequence[str], treat1: Sequence[str], treat2: Sequence[str], yi: Sequence[float] | np.ndarray,
    vi: Sequence[float] | np.ndarray, order: Sequence[str],
) -> AdjustedFunnel:
    """Comparison-adjusted effects and Egger's test; ValueError unless ``order`` lists every treatment once."""
    data = build_network_data(study, treat1, treat2, yi, vi)
    order = tuple(str(t) for t in order)
    if sorted(order) != sorted(data.treatments):
        raise ValueError(f"order must list every treatment once: {', '.join(data.treatments)}")
    rank = np.array([order.index(t) for t in data.treatments])
    flip = rank[data.treat1] > rank[data.treat2]
    first = np.where(flip, data.treat2, data.treat1)
    second = np.where(flip, data.treat1, data.treat2)
    y = np.where(flip, -data.yi, data.yi)
    w = 1.0 / data.vi
    comparison = tuple(f"{data.treatments[a]}:{data.treatments[b]}" for a, b in zip(first, second))
    adjusted = y.copy()
    for label in set(comparison):
        rows = np.array([c == label for c in comparison])
        adjusted[rows] -= np.sum(w[rows] * y[rows]) / np.sum(w[rows])
    se = np.sqrt(data.vi)
    bias, bias_se, df = _egger(adjusted, se)
    stat = bias / bias_se
    return AdjustedFunnel(order=order, study=tuple(data.study_labels[s] for s in data.row_study),
                          comparison=comparison, yi_adj=adjusted, se=se, egger_bias=bias, egger_se=bias_se,
                          egger_statistic=stat, egger_df=df, egger_p=float(dist.t_two_sided_p(stat, df)))


def _egger(y: np.ndarray, se: np.ndarray) -> tuple[float, float, int]:
    """Slope of lm(y ~ se, weights = 1/se^2), its standard error and df (meta's Egger test)."""
    if y.size < 3 or np.ptp(se) == 0:
        raise ValueError("Egger's test needs at least 3 contrasts with different standard errors")
    x = np.column_stack([np.ones_like(se), se])
    w = 1.0 / se**2
    xtwx_inv = np.linalg.inv(x.T @ (w[:, None] * x))
    beta = xtwx_inv @ x.T @ (w * y)
    df = y.size - 2
    sigma2 = float(np.sum(w * (y - x @ beta) ** 2)) / df
    return float(beta[1]), float(np.sqrt(sigma2 * xtwx_inv[1, 1])), df
