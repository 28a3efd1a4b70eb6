"""Session 4 review: three-level REML from M^-1's cluster blocks (stats/multilevel.py, _reml_blocks).

With one effect per trial (every cluster of size 1), the two variance components are confounded: the
REML surface is flat along sigma2_1 + sigma2_2 = const. metafor (like the dense path before f9ce13e) then
splits the sum equally; the block formulas compute the two scores and informations by different sums, and
their last-bit differences are amplified along the flat direction.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metapsych.analysis.sensitivity import sensitivity_table
from metapsych.stats import multilevel as ml
from metapsych.stats.multilevel import compound_symmetric_v, fit_three_level

FIXTURES = Path(__file__).parent / "fixtures"


def _load(name: str) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, dict]:
    values = np.loadtxt(FIXTURES / f"{name}.csv", delimiter=",", skiprows=1)
    x = np.column_stack([np.ones(len(values)), values[:, 3:]])
    ref = json.loads((FIXTURES / f"{name}.rma_mv.json").read_text())
    return values[:, 1], values[:, 2], [f"t{int(c)}" for c in values[:, 0]], x, ref


def _assert_matches_metafor(name: str) -> None:
    y, v, trials, x, ref = _load(name)
    f = fit_three_level(y, v, trials, X=x)
    np.testing.assert_allclose(f.beta, ref["b"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(f.se, ref["se"], rtol=1e-6)
    np.testing.assert_allclose(f.loglik, ref["ll"], rtol=1e-8)
    np.testing.assert_allclose(f.sigma2, ref["sigma2"], rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("name", ["ml_one_effect_per_trial_k7", "ml_one_effect_per_trial_p3"])
def test_one_effect_per_trial_is_fitted(name: str) -> None:
    """k = 7 intercept-only, and k = 9 with two moderators (p = 3); metafor and 81b89fc fit both."""
    _assert_matches_metafor(name)


def test_one_effect_per_trial_splits_the_variance_as_metafor() -> None:
    _assert_matches_metafor("ml_one_effect_per_trial_split")


def test_sensitivity_three_level_row_of_a_cell_with_one_effect_per_trial() -> None:
    y, v, trials, _, ref = _load("ml_one_effect_per_trial_k7")
    row = sensitivity_table(y, v, trials, None, models=("three_level",))[0]
    assert row["message"] is None
    np.testing.assert_allclose(row["estimate"], ref["b"][0], rtol=1e-6)


def _case(seed: int, sizes: list[int], p: int, che: bool, s2: tuple[float, float]):
    """(y, V, X, trials, design, sigma2) of a random three-level data set with the given cluster sizes."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(codes)
    k = codes.size
    v = rng.uniform(0.01, 0.3, k)
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    x = np.column_stack([np.ones(k)] + [rng.normal(size=k) for _ in range(p - 1)])
    trials = [f"t{c}" for c in codes]
    vmat = compound_symmetric_v(v, trials, 0.6) if che else np.diag(v)
    return y, vmat, x, trials, ml._design(ml.cluster_codes(trials), vmat), np.array(s2)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), sizes=st.lists(st.integers(1, 5), min_size=1, max_size=12),
       p=st.integers(1, 3), che=st.booleans(),
       s2=st.tuples(st.sampled_from([0.0, 1e-6, 0.05, 2.0]), st.sampled_from([0.0, 1e-6, 0.05, 2.0])))
def test_block_reml_equals_dense_reml(seed: int, sizes: list[int], p: int, che: bool,
                                      s2: tuple[float, float]) -> None:
    """Single cluster, clusters of size 1 only, p > 1, CHE V, components at 0: the same REML quantities."""
    if sum(sizes) <= p + 1:
        return
    y, vmat, x, _, design, s2v = _case(seed, sizes, p, che, s2)
    assert design.block_diagonal
    dense, blocks = ml._reml_dense(y, vmat, x, design, s2v), ml._reml_blocks(y, vmat, x, design, s2v)
    for name in ("loglik", "score", "info", "observed"):
        a, b = np.atleast_1d(getattr(dense, name)), np.atleast_1d(getattr(blocks, name))
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-9 * max(1.0, float(np.max(np.abs(a)))), err_msg=name)


@pytest.mark.parametrize("seed", range(8))
def test_block_and_dense_paths_reach_the_same_maximum(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clusters of mixed sizes (at least one with two effects), diagonal or CHE V, p = 1 or 2."""
    rng = np.random.default_rng(seed)
    sizes = [2] + list(rng.integers(1, 5, 9))
    y, vmat, x, trials, _, _ = _case(seed, sizes, 1 + seed % 2, seed % 3 == 0, (0.0, 0.0))
    blocks = fit_three_level(y, vmat, trials, X=x)
    design = ml._design
    monkeypatch.setattr(ml, "_design", lambda c, v: dataclasses.replace(design(c, v), block_diagonal=False))
    dense = fit_three_level(y, vmat, trials, X=x)
    np.testing.assert_allclose(blocks.loglik, dense.loglik, rtol=1e-10)
    np.testing.assert_allclose(blocks.beta, dense.beta, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(blocks.Q, dense.Q, rtol=1e-10)


def test_v_not_block_diagonal_takes_the_dense_path() -> None:
    """A sampling covariance across clusters: the dense path, the same fit as an equivalent reordering."""
    rng = np.random.default_rng(11)
    trials = [f"t{i // 2}" for i in range(12)]
    v = rng.uniform(0.02, 0.2, 12)
    vmat = np.diag(v)
    vmat[0, 2] = vmat[2, 0] = 0.3 * np.sqrt(v[0] * v[2])
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    assert not ml._design(ml.cluster_codes(trials), vmat).block_diagonal
    f = fit_three_level(y, vmat, trials)
    perm = rng.permutation(12)
    g = fit_three_level(y[perm], vmat[np.ix_(perm, perm)], [trials[i] for i in perm])
    assert f.converged and g.converged
    np.testing.assert_allclose([f.loglik, f.estimate, f.se[0], f.Q], [g.loglik, g.estimate, g.se[0], g.Q], rtol=1e-7)
