"""Combine dependent effect sizes within a cluster into one, as metafor's ``aggregate.escalc(struct="CS")``.

This is metapsyTools' "combined" model: effects of one trial (several instruments or arms) are assumed to
share a correlation ``rho`` of their sampling errors. Within a cluster, V = S R S with R compound symmetric
(1 on the diagonal, rho elsewhere) and S = diag(sqrt(vi)); with W = V^-1 the combined effect is
sum(W y) / sum(W) and its variance 1 / sum(W) (sums over all elements of W).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cluster_order(cluster: Sequence[object]) -> list[object]:
    """Distinct cluster labels in order of first appearance (R's ``unique``)."""
    return list(dict.fromkeys(cluster))


def aggregate(
    yi: np.ndarray, vi: np.ndarray, cluster: Sequence[object], rho: float = 0.6
) -> tuple[np.ndarray, np.ndarray, list[object]]:
    """Return ``(yi_agg, vi_agg, cluster_labels)``, one entry per cluster in order of first appearance.

    ValueError if the lengths differ, rho is outside [-1, 1], or a cluster's V is not positive definite.
    """
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    labels = list(cluster)
    if not (y.size == v.size == len(labels)):
        raise ValueError("yi, vi and cluster must have the same length")
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [-1, 1], got {rho}")
    order = cluster_order(labels)
    codes = np.array([order.index(c) for c in labels]) if labels else np.array([], dtype=int)
    y_out = np.empty(len(order))
    v_out = np.empty(len(order))
    for j in range(len(order)):
        idx = np.flatnonzero(codes == j)
        y_out[j], v_out[j] = _combine(y[idx], v[idx], rho)
    return y_out, v_out, order


def _combine(y: np.ndarray, v: np.ndarray, rho: float) -> tuple[float, float]:
    """Inverse-variance combination of one cluster's effects under a compound-symmetric V."""
    if y.size == 1:
        return float(y[0]), float(v[0])
    s = np.sqrt(v)
    r = np.full((y.size, y.size), rho)
    np.fill_diagonal(r, 1.0)
    try:
        w = np.linalg.inv(np.linalg.cholesky(s[:, None] * r * s[None, :]))
    except np.linalg.LinAlgError as exc:
        raise ValueError("the within-cluster covariance matrix is not positive definite") from exc
    w = w.T @ w
    total = float(np.sum(w))
    return float(np.sum(w @ y) / total), 1.0 / total
