"""fit_many's lean loop (``_scoring_paths``: the tail on the way to tau2 = 0 and the replayed paths) changes no
bit: disabled (LEAN_MAX = 0, every step in ``_iterate``) or taking every analysis as soon as it may, the
results are the default's bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats import batch
from metapsych.stats.batch import fit_many
from metapsych.stats.tau2 import Control

from .test_batch_edges import _assert_identical, _flatten, _near_boundary


def _grid(rng: np.random.Generator, analyses: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Analyses of k studies, a third each with tau2 = 0, small and large: maxima at 0 and interior ones."""
    groups = np.repeat(np.arange(analyses), k)
    vi = rng.uniform(0.005, 0.3, groups.size) * rng.choice([1.0, 1.0, 50.0], groups.size)
    tau2 = rng.choice([0.0, 0.01, 0.2], analyses)[groups]
    return rng.normal(0.0, np.sqrt(vi + tau2)), vi, groups


def _cases() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(8)
    near = [_near_boundary(rng, int(rng.choice([2, 5, 12])), excess) for excess in np.geomspace(1e-7, 1e-2, 6)]
    return [_grid(rng, 300, 20), _grid(rng, 40, 7), _flatten(near), _flatten(near * 8)]


@pytest.mark.parametrize("estimator", ["ML", "REML"])
@pytest.mark.parametrize("control", [Control(), Control(threshold=1e-5), Control(maxiter=4)])
def test_lean_loop_changes_no_bit(estimator: str, control: Control, monkeypatch: pytest.MonkeyPatch) -> None:
    for yi, vi, groups in _cases():
        fits = []
        for lean in (batch.LEAN_MAX, 0, 10**9):
            monkeypatch.setattr(batch, "LEAN_MAX", lean)
            fits.append(fit_many(yi, vi, groups, estimator=estimator, control=control, qprofile=False))
        _assert_identical(fits[0], fits[1])
        _assert_identical(fits[0], fits[2])
