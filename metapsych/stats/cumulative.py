"""Cumulative meta-analysis, as metafor's ``cumul(fit, order=year)``: the model refitted after each
study is added in order (ties keep the input order, as R's ``order`` does)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metapsych.stats.rma import fit


@dataclass(frozen=True)
class Cumulative:
    """Arrays of length k; ``order`` gives the input index of the study added at each step."""

    order: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    Q: np.ndarray
    tau2: np.ndarray
    I2: np.ndarray


def cumulative(
    yi, vi, order_by, *, estimator: str = "REML", test: str = "z", level: float = 0.95
) -> Cumulative:
    """Fit the first 1, 2, ..., k studies after sorting by ``order_by`` (e.g. publication year)."""
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    order = np.argsort(np.asarray(order_by, dtype=float), kind="stable")
    fits = [fit(y[order[: i + 1]], v[order[: i + 1]], estimator=estimator, test=test, level=level)
            for i in range(y.size)]

    def col(name: str) -> np.ndarray:
        return np.array([float(np.atleast_1d(getattr(f, name))[0]) for f in fits])

    return Cumulative(
        order=order, estimate=col("beta"), se=col("se"), p_value=col("p_value"), ci_lower=col("ci_lower"),
        ci_upper=col("ci_upper"), Q=col("Q"), tau2=col("tau2"), I2=col("I2"),
    )
