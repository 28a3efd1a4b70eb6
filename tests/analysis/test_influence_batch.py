"""The batched leave-one-out refits of the report's cells equal refitting the model study by study."""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats import influence
from metapsych.stats.influence import case_diagnostics
from metapsych.stats.rma import fit

LOO_FIELDS = ("estimate", "se", "statistic", "p_value", "ci_lower", "ci_upper", "Q", "Q_p", "tau2", "I2", "H2")
INFLUENCE_FIELDS = ("rstudent", "dffits", "cooks_d", "cov_r", "tau2_del", "Q_del", "hat", "dfbetas",
                    "baujat_x", "baujat_y")


def data(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.4, 0.4, k), rng.uniform(0.01, 0.2, k)


def one_by_one(y: np.ndarray, v: np.ndarray, estimator: str, test: str) -> dict[str, np.ndarray]:
    """The study-by-study path of ``case_diagnostics`` (the one models with moderators take)."""
    x = np.ones((y.size, 1))
    full = fit(y, v, X=x, estimator=estimator, test=test)
    fits = [fit(np.delete(y, i), np.delete(v, i), X=np.delete(x, i, axis=0), estimator=estimator, test=test)
            for i in range(y.size)]
    loo, inf = influence._leave_one_out(fits), influence._influence(y, v, x, full, fits)
    return {**{f: getattr(loo, f) for f in LOO_FIELDS}, **{f: getattr(inf, f) for f in INFLUENCE_FIELDS},
            "influential": inf.influential}


@pytest.mark.parametrize("estimator", ["REML", "DL", "EE", "PM"])
@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("k", [3, 17, 60])
def test_batched_equals_study_by_study(estimator: str, test: str, k: int) -> None:
    y, v = data(k, seed=k)
    expected = one_by_one(y, v, estimator, test)
    cd = case_diagnostics(y, v, estimator=estimator, test=test)
    for name in LOO_FIELDS:
        np.testing.assert_allclose(getattr(cd.leave_one_out, name), expected[name], rtol=1e-9, atol=1e-12)
    for name in INFLUENCE_FIELDS:
        # DFFITS, DFBETAS, Cook's D and Baujat's y are differences of two estimates: the tau2 convergence
        # tolerance (1e-10) bounds their agreement, not the arithmetic
        np.testing.assert_allclose(getattr(cd.influence, name), expected[name], rtol=1e-5, atol=1e-9)
    assert list(cd.influence.influential) == list(expected["influential"])


def test_chunked_batches_give_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    y, v = data(40, seed=3)
    whole = case_diagnostics(y, v, test="knha")
    monkeypatch.setattr(influence, "BATCH_ELEMENTS", 100)  # 2 refits per fit_many call
    chunked = case_diagnostics(y, v, test="knha")
    for name in LOO_FIELDS:  # p-values agree to the last bits only: lock-step iterations run per batch
        np.testing.assert_allclose(getattr(chunked.leave_one_out, name), getattr(whole.leave_one_out, name),
                                   rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(chunked.influence.dffits, whole.influence.dffits, rtol=1e-12)


def test_identical_remaining_effects_give_infinite_dffits_not_an_error() -> None:
    """Leaving out the one differing study leaves identical effects: a zero Hartung-Knapp scale."""
    y = np.array([0.5, 0.5, 0.5, 0.9])
    v = np.full(4, 0.05)
    cd = case_diagnostics(y, v, test="knha")
    assert not np.isfinite(cd.influence.dffits[3])
    assert np.all(np.isfinite(cd.leave_one_out.estimate))
