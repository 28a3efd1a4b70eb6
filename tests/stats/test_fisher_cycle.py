"""Fisher scoring that returns to a tau^2 it has met repeats the same steps: it is stopped there as not
converged, which is what running on to maxiter would give, without the thousands of steps (a permutation
test of a meta-regression met such paths in a third of its permutations; 200 took 34 s, now 15 s)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from metapsych.stats import tau2
from metapsych.stats.metareg import design_matrix
from metapsych.stats.rma import fit

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "fisher_cycle.csv"


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = list(csv.DictReader(DATA.open()))
    x = design_matrix({"x1": [float(r["x1"]) for r in rows], "factor(num)": [r["num"] for r in rows]}).X
    return np.array([float(r["yi"]) for r in rows]), np.array([float(r["vi"]) for r in rows]), x


def test_a_cycle_stops_the_iteration_as_not_converged(monkeypatch: pytest.MonkeyPatch) -> None:
    """metafor (R 4.2, metafor 3.8-1, threshold 1e-10, maxiter 10000) on these data:
    rma(yi, vi, mods = ~ x1 + factor(num)) stops with "Fisher scoring algorithm did not converge"."""
    y, v, x = _data()
    steps = []
    original = tau2.project
    monkeypatch.setattr(tau2, "project", lambda *a, **k: steps.append(1) or original(*a, **k))
    result = fit(y, v, X=x, estimator="REML", retry=False)
    assert not result.converged and result.message == tau2.not_converged_message("REML", tau2.TIGHT)
    assert len(steps) < 1000  # the cycle closes after about 220 steps, far from maxiter = 10,000
