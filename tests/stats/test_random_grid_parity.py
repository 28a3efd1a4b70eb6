"""Freshly drawn analyses (k = 1..45, variances over 10 orders of magnitude, tau^2 = 0 to large) pooled at
once by ``fit_many`` agree with metafor's per-analysis ``rma()``, ``predict()`` and ``confint()`` for
every estimator (fixtures: tests/fixtures/metafor/random_grid.*); and ML/REML on analyses of up to 260
studies with tiny tau^2, where Newton and metafor's scoring must stop at the same point relative to tau^2
(random_tiny_tau2.*)."""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats.batch import fit_many

from .oracle import close, load_csv, load_json

FIXTURES = ("random_grid", "random_tiny_tau2", "random_large")
CASES = [(name, case) for name in FIXTURES for case in sorted(load_json(name)["fits"])]
KEYS = ["tau2", "se_tau2", "estimate", "se", "statistic", "p_value", "ci_lower", "ci_upper", "Q", "Q_p", "I2", "H2",
        "pi_lower", "pi_upper", "tau2_ci_lower", "tau2_ci_upper"]


def _number(value: float | str | None) -> float | None:
    """jsonlite writes R's infinities as strings."""
    return {"Inf": float("inf"), "-Inf": float("-inf")}.get(value, value) if isinstance(value, str) else value


def _ours(batch, i: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    one = batch[i]
    return {"tau2": one.tau2, "se_tau2": one.tau2_se, "estimate": one.estimate, "se": float(one.se[0]),
            "statistic": float(one.statistic[0]), "p_value": float(one.p_value[0]),
            "ci_lower": float(one.ci_lower[0]), "ci_upper": float(one.ci_upper[0]), "Q": one.Q, "Q_p": one.Q_p,
            "I2": one.I2, "H2": one.H2, "pi_lower": one.pi_lower, "pi_upper": one.pi_upper,
            "tau2_ci_lower": float(batch.tau2_ci_lower[i]), "tau2_ci_upper": float(batch.tau2_ci_upper[i])}


@pytest.mark.parametrize(("name", "case"), CASES)
def test_every_analysis_matches_metafor(name: str, case: str) -> None:
    reference = load_json(name)["fits"][case]
    rows = load_csv(name)
    groups = np.array([int(r["analysis"]) for r in rows])
    estimator, test = case.split("_")
    batch = fit_many(np.array([float(r["yi"]) for r in rows]), np.array([float(r["vi"]) for r in rows]), groups,
                     estimator=estimator, test=test)
    mismatches = []
    for i, label in enumerate(np.unique(groups)):
        expected = reference[str(label)]
        if not expected["ok"]:
            continue
        ours = _ours(batch, i)
        for key in KEYS:
            if key not in expected or (estimator == "EE" and key.startswith("pi_")):  # EE: no PI is reported
                continue
            if not close(ours[key], _number(expected[key])):
                mismatches.append(f"analysis {label} (k={expected['k']}) {key}: {ours[key]!r} vs {expected[key]!r}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])
