"""Edge cases of ``batch.fit_many`` against ``rma.fit`` (the per-analysis reference, itself checked against
metafor): batches of k = 1 and k = 2 analyses, ties and identical effects, variances from 1e-8 to 1e4 in one
analysis, one dominating study, labels of any type and order, metafor's replayed scoring path (scalar and
vectorised), aliasing of the returned arrays, and the vectorised t quantiles. The last tests pin down bugs
found in review: results that depended on the rest of the batch, a log-sum through subnormal products,
REML's path with a dominating study, metafor's iteration limit under Newton steps, huge-df t quantiles.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metapsych.stats import distributions as dist
from metapsych.stats.batch import BatchFit, fit_many
from metapsych.stats.heterogeneity import confint_tau2
from metapsych.stats.rma import fit
from metapsych.stats.tau2 import TIGHT, Control

from .oracle import close

ESTIMATORS = ["EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ"]
TESTS = ["z", "knha", "adhoc", "t"]
FIELDS = ["estimate", "tau2", "tau2_se", "Q", "Q_p", "I2", "H2", "vt", "pi_lower", "pi_upper", "s2w"]
COEFFICIENTS = ["se", "statistic", "p_value", "ci_lower", "ci_upper"]
Analyses = list[tuple[np.ndarray, np.ndarray]]


# ------------------------------------------------------------------------------------------------ helpers


def _same(label: str, a: float, b: float) -> None:
    """``a`` equals the reference ``b`` to the oracle's tolerance (non-finite: non-finite or equal)."""
    if not math.isfinite(b):
        assert not math.isfinite(a) or a == b, f"{label}: batch {a!r} != fit {b!r}"
    else:
        assert close(a, b), f"{label}: batch {a!r} != fit {b!r}"


def _flatten(analyses: Analyses, labels: list | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """yi, vi and group labels of analyses laid end to end (labels 0..n-1 unless given)."""
    labels = list(range(len(analyses))) if labels is None else labels
    yi = np.concatenate([y for y, _ in analyses])
    vi = np.concatenate([v for _, v in analyses])
    groups = np.concatenate([np.full(y.size, label) for (y, _), label in zip(analyses, labels)])
    return yi, vi, groups


def _assert_like_fit(batch: BatchFit, yi: np.ndarray, vi: np.ndarray, groups: np.ndarray, estimator: str,
                     test: str, control: Control = TIGHT, qprofile: bool = True) -> None:
    """Analysis by analysis, ``batch`` says what ``rma.fit`` (and ``confint_tau2``) say."""
    for i, g in enumerate(np.unique(groups)):
        mask = groups == g
        one = fit(yi[mask], vi[mask], estimator=estimator, test=test, level=batch.level, control=control)
        got = batch[i]
        label = f"analysis {g!r} (k = {one.k}) {estimator}/{test}"
        assert (got.converged, got.message) == (one.converged, one.message), label
        assert (got.test, got.df) == (one.test, one.df), label
        if not one.converged:
            assert math.isnan(got.estimate) and math.isnan(got.tau2), label
            continue
        for name in FIELDS:
            _same(f"{label} {name}", getattr(got, name), getattr(one, name))
        for name in COEFFICIENTS:
            _same(f"{label} {name}", float(getattr(got, name)[0]), float(getattr(one, name)[0]))
        np.testing.assert_allclose(got.weights, one.weights, rtol=1e-6, atol=1e-12, err_msg=label)
        if qprofile and estimator != "EE" and one.k > 1:
            ci = confint_tau2(yi[mask], vi[mask], one)
            _same(f"{label} tau2 ci lb", batch.tau2_ci_lower[i], ci.tau2_lower)
            _same(f"{label} tau2 ci ub", batch.tau2_ci_upper[i], ci.tau2_upper)
            assert bool(batch.ci_null[i]) == ci.ci_null, label


def _near_boundary(rng: np.random.Generator, k: int, excess: float) -> tuple[np.ndarray, np.ndarray]:
    """An analysis whose REML score at tau2 = 0 is just positive: a tiny interior tau2, where metafor's
    stopping point is visibly off the maximum and fit_many replays metafor's path.

    The score at 0 is c^2 A - B for effects c * z, so c = sqrt(B / A) (1 + excess) puts it just above 0.
    """
    v = rng.uniform(0.01, 0.1, k)
    z = rng.normal(0.0, 1.0, k) * np.sqrt(v)
    w = 1.0 / v
    r = z - np.sum(w * z) / np.sum(w)
    a, b = np.sum(w * w * r * r), np.sum(w) - np.sum(w * w) / np.sum(w)
    return math.sqrt(b / a) * (1.0 + excess) * z, v


def _edge_analyses() -> Analyses:
    """Hand-made analyses for every estimator and test (REML's maximum interior wherever a study dominates)."""
    rng = np.random.default_rng(2024)
    wide_v = np.array([1e-8, 1e-5, 1e-2, 1.0, 1e2, 1e4])
    return [
        (np.array([0.42]), np.array([0.03])),  # k = 1
        (np.array([0.1, 0.9]), np.array([0.02, 0.05])),  # k = 2, heterogeneous
        (np.array([0.3, 0.3]), np.array([0.02, 0.2])),  # k = 2, identical effects
        (np.full(4, -0.25), np.full(4, 0.04)),  # identical effects and variances: Q = 0
        (np.array([0.2, 0.2, 0.5, 0.5, 0.5]), np.array([0.1, 0.1, 0.05, 0.05, 0.2])),  # ties
        (rng.normal(0.0, 1.0, 6), wide_v),  # vi from 1e-8 to 1e4
        (np.array([0.05, 0.9, -0.6, 1.4, 0.3]), np.array([1e-7, 0.1, 0.2, 0.3, 0.4])),  # one study dominates
        (rng.normal(0.3, np.sqrt(0.05 + 5.0), 8), rng.uniform(0.01, 0.1, 8)),  # tau2 ~ 5
        (rng.normal(0.3, np.sqrt(0.05), 3), np.full(3, 0.05)),  # likely tau2 = 0 (the path to the boundary)
        _near_boundary(rng, 12, 1e-3),  # a replayed metafor path
    ]


def _arrays(batch: BatchFit) -> dict[str, np.ndarray]:
    return {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)
            if isinstance(getattr(batch, f.name), np.ndarray)}


def _assert_identical(a: BatchFit, b: BatchFit) -> None:
    """Every per-analysis array and message of two batch fits is bit for bit the same."""
    assert a.messages == b.messages
    for name, value in _arrays(a).items():
        if name not in ("weights", "study_order", "starts"):
            np.testing.assert_array_equal(getattr(b, name), value, err_msg=name)


# ---------------------------------------------------------------------------------------- hand-made cases


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("test", TESTS)
def test_edge_analyses_equal_fit(estimator: str, test: str) -> None:
    """Unsorted, non-contiguous labels over the hand-made analyses; every field as ``rma.fit`` has it."""
    analyses = _edge_analyses()
    yi, vi, groups = _flatten(analyses, [37, -4, 12, 0, 5, 101, -60, 8, 3, 77])
    rows = np.random.default_rng(9).permutation(yi.size)
    yi, vi, groups = yi[rows], vi[rows], groups[rows]
    batch = fit_many(yi, vi, groups, estimator=estimator, test=test)
    _assert_like_fit(batch, yi, vi, groups, estimator, test)


@pytest.mark.parametrize("test", TESTS)
def test_batches_of_single_studies(test: str) -> None:
    """k = 1 everywhere: z test, df None, the study's own estimate and metafor's messages for every estimator."""
    yi, vi, groups = np.array([0.3, -0.8, 1.2]), np.array([0.02, 0.5, 1e-6]), np.array([2, 0, 1])
    for estimator in ESTIMATORS:
        batch = fit_many(yi, vi, groups, estimator=estimator, test=test)
        assert list(batch.tests) == ["z"] * 3
        _assert_like_fit(batch, yi, vi, groups, estimator, test)


@pytest.mark.parametrize("estimator", ["ML", "REML", "EB"])
def test_loose_threshold_non_convergence_like_fit(estimator: str) -> None:
    """metafor's path with too few iterations: the same analyses fail or are refitted with step halving, with
    fit's messages and NaN results."""
    yi, vi, groups = _flatten(_edge_analyses())
    control = Control(threshold=1e-5, maxiter=1)
    batch = fit_many(yi, vi, groups, estimator=estimator, control=control)
    assert not batch.converged.all()
    _assert_like_fit(batch, yi, vi, groups, estimator, "z", control=control)


@pytest.mark.parametrize("replayed", [3, 12])
@pytest.mark.parametrize("estimator", ["ML", "REML"])
def test_replayed_paths_equal_fit(replayed: int, estimator: str) -> None:
    """Tiny interior tau2: metafor's stopping point, whether few analyses replay it (the scalar loop) or
    many (the vectorised iteration)."""
    rng = np.random.default_rng(31)
    analyses = [_near_boundary(rng, int(rng.choice([2, 5, 12])), excess) for excess in
                np.geomspace(1e-7, 1e-2, replayed)]
    yi, vi, groups = _flatten(analyses)
    batch = fit_many(yi, vi, groups, estimator=estimator, test="knha", qprofile=False)
    assert (batch.tau2 > 0).any()
    _assert_like_fit(batch, yi, vi, groups, estimator, "knha", qprofile=False)


def test_label_types_and_order_change_nothing() -> None:
    """Labels only group: strings, negative, float and object labels, and analyses in any order (each
    analysis' rows in the same order), give bit-identical results, with weights back in the caller's rows."""
    analyses = _edge_analyses()
    yi, vi, groups = _flatten(analyses)
    reference = fit_many(yi, vi, groups, estimator="REML", test="knha")
    relabelled = {
        "strings": np.array([f"cell-{g:03d}" for g in groups]),
        "negative": 7 * groups - 1000,
        "floats": groups / 3.0,
        "objects": np.array(groups.tolist(), dtype=object),
    }
    for name, labels in relabelled.items():
        batch = fit_many(yi, vi, labels, estimator="REML", test="knha")
        _assert_identical(reference, batch)
        np.testing.assert_array_equal(batch.weights, reference.weights, err_msg=name)
    order = np.random.default_rng(3).permutation(len(analyses))  # analyses interleaved differently
    rows = np.concatenate([np.flatnonzero(groups == g) for g in order])
    batch = fit_many(yi[rows], vi[rows], groups[rows], estimator="REML", test="knha")
    _assert_identical(reference, batch)
    back = np.empty_like(batch.weights)
    back[rows] = batch.weights
    np.testing.assert_array_equal(back, reference.weights)
    for i in range(len(analyses)):
        np.testing.assert_array_equal(batch[i].weights, reference[i].weights)


@pytest.mark.parametrize("qprofile", [True, False])
def test_returned_arrays_share_no_memory(qprofile: bool) -> None:
    """No array of a BatchFit is another field's array or the caller's input."""
    yi, vi, groups = _flatten(_edge_analyses())
    for estimator in ("EE", "DL", "REML", "GENQ"):
        batch = fit_many(yi, vi, groups, estimator=estimator, qprofile=qprofile)
        arrays = {**_arrays(batch), "yi": yi, "vi": vi, "group_index": groups}
        shared = [(a, b) for a, b in itertools.combinations(arrays, 2) if np.shares_memory(arrays[a], arrays[b])]
        assert not shared, f"{estimator}: {shared}"


def test_no_state_survives_between_calls() -> None:
    """Inputs changed in place between calls and results mutated by the caller leak into nothing (no memo
    or cached fit outlives a call)."""
    yi, vi, groups = _flatten(_edge_analyses())
    first = fit_many(yi, vi, groups)
    snapshot = {name: value.copy() for name, value in _arrays(first).items()}
    yi *= 1.5  # the same array objects, new values
    vi += 0.01
    second = fit_many(yi, vi, groups)
    _assert_identical(fit_many(yi.copy(), vi.copy(), groups.copy()), second)
    for name, value in snapshot.items():
        np.testing.assert_array_equal(getattr(first, name), value, err_msg=name)
    expected = second.estimate.copy()
    for value in _arrays(first).values():
        value[...] = 0
    np.testing.assert_array_equal(second.estimate, expected)


# ------------------------------------------------------------------------------------------ property tests


@st.composite
def batches(draw: st.DrawFn, ratio: float) -> Analyses:
    """1-5 analyses of 1-8 studies: variances spanning up to ``ratio`` within an analysis (times a scale
    from 1e-4 to 1e2), and effects heterogeneous, identical, tied or just past the REML boundary."""
    analyses = []
    for _ in range(draw(st.integers(1, 5))):
        k = draw(st.integers(1, 8))
        scale = 10.0 ** draw(st.integers(-4, 2))
        v = scale * np.array(draw(st.lists(st.floats(1.0 / ratio, 1.0), min_size=k, max_size=k)))
        z = np.array(draw(st.lists(st.floats(-3.0, 3.0), min_size=k, max_size=k)))
        tau2 = scale * draw(st.sampled_from([0.0, 0.05, 1.0]))
        y = 0.3 * math.sqrt(scale) + z * np.sqrt(v + tau2)
        shape = draw(st.sampled_from(["heterogeneous", "identical", "tied", "boundary"]))
        if shape == "identical":
            y = np.full(k, y[0])
        elif shape == "tied":
            y = np.round(y / math.sqrt(scale), 1) * math.sqrt(scale)
        elif shape == "boundary" and k > 1:
            w = 1.0 / v
            r = y - np.sum(w * y) / np.sum(w)
            a, b = np.sum(w * w * r * r), np.sum(w) - np.sum(w * w) / np.sum(w)
            if a > 0:
                y = r * math.sqrt(b / a) * (1.0 + draw(st.sampled_from([1e-6, 1e-4, 1e-2])))
        analyses.append((y, v))
    return analyses


@settings(derandomize=True, max_examples=40, deadline=None)
@given(batches(ratio=1e3), st.sampled_from(ESTIMATORS), st.sampled_from(TESTS), st.randoms(use_true_random=False))
def test_random_batches_equal_fit(analyses: Analyses, estimator: str, test: str, random) -> None:  # type: ignore[no-untyped-def]
    labels = random.sample(range(-50, 50), len(analyses))
    yi, vi, groups = _flatten(analyses, labels)
    batch = fit_many(yi, vi, groups, estimator=estimator, test=test)
    _assert_like_fit(batch, yi, vi, groups, estimator, test)


@settings(derandomize=True, max_examples=30, deadline=None)
@given(batches(ratio=1e7), st.sampled_from([e for e in ESTIMATORS if e != "REML"]), st.sampled_from(TESTS))
def test_random_batches_with_dominating_studies_equal_fit(analyses: Analyses, estimator: str, test: str) -> None:
    """Variances up to 1e7 apart in one analysis (beyond, metafor warns that its results are unstable, and
    its tr(P) indeed loses digits). REML is left out: see ``test_reml_boundary_path_with_a_dominating_study``."""
    yi, vi, groups = _flatten(analyses)
    batch = fit_many(yi, vi, groups, estimator=estimator, test=test)
    _assert_like_fit(batch, yi, vi, groups, estimator, test)


# ------------------------------------------------------------------------------------------ t quantiles

T_ALPHAS = [1e-10, 1e-4, 0.01, 0.05, 0.2, 0.5, 0.9, 0.999999]
T_DFS = [0.05, 0.5, 0.999, 1.0, 1.5, 2.5, 7.3, 29.0, 1000.0]


def test_t_quantiles_in_lock_step_equal_the_scalar_solver() -> None:
    """Many (alpha, df) at once (the lock-step Newton) against one at a time, fractional and df < 1 included."""
    alpha, df = (a.ravel() for a in np.meshgrid(T_ALPHAS, T_DFS))
    together = dist.t_from_two_sided_p(alpha, df)
    alone = np.array([float(dist.t_from_two_sided_p(a, d)) for a, d in zip(alpha.tolist(), df.tolist())])
    np.testing.assert_allclose(together, alone, rtol=1e-12)


def test_t_quantiles_in_lock_step_match_scipy() -> None:
    from scipy import stats

    alpha, df = (a.ravel() for a in np.meshgrid(T_ALPHAS, T_DFS))
    expected = stats.t.isf(alpha / 2, df)
    keep = expected < 1e100  # beyond, t^2 overflows (see the report: a known limit, not the lock-step's)
    np.testing.assert_allclose(dist.t_from_two_sided_p(alpha, df)[keep], expected[keep], rtol=1e-9)


def test_t_quantiles_of_irregular_values_in_long_arrays() -> None:
    """NaN, p of 0 or 1 (or outside), df <= 0 anywhere in a long array: each element as asked alone."""
    p = np.array([0.05, np.nan, 0.0, 1.0, 1.5, -0.1, 0.05, 0.05, 0.3, 1e-300] * 2)
    df = np.array([3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 0.0, -2.0, np.nan, 0.5] * 2)
    together = dist.t_from_two_sided_p(p, df)
    alone = np.array([float(dist.t_from_two_sided_p(a, d)) for a, d in zip(p.tolist(), df.tolist())])
    np.testing.assert_array_equal(together, alone)
    assert together[2] == math.inf and together[3] == 0.0 and np.isnan(together[[1, 4, 5, 6, 7, 8]]).all()


# ------------------------------------------------------------------------------------ bugs found in review


def test_replay_does_not_depend_on_the_rest_of_the_batch() -> None:
    rng = np.random.default_rng(5)
    analyses = [_near_boundary(rng, 12, 1e-4) for _ in range(12)]
    together = fit_many(*_flatten(analyses), qprofile=False)
    for i, (y, v) in enumerate(analyses):
        alone = fit_many(y, v, np.zeros(y.size, int), qprofile=False)
        assert alone.tau2[0] == together.tau2[i] and alone.estimate[0] == together.estimate[i], i


def test_t_based_intervals_do_not_depend_on_the_rest_of_the_batch() -> None:
    rng = np.random.default_rng(2)
    analyses = []
    for k in range(2, 40):
        v = rng.uniform(0.01, 0.2, k)
        analyses.append((rng.normal(0.3, np.sqrt(v + 0.05)), v))
    together = fit_many(*_flatten(analyses), estimator="DL", test="knha", qprofile=False)
    for i, (y, v) in enumerate(analyses):
        alone = fit_many(y, v, np.zeros(y.size, int), estimator="DL", test="knha", qprofile=False)
        for name in ("ci_lower", "ci_upper", "pi_lower", "pi_upper"):
            assert getattr(alone, name)[0] == getattr(together, name)[i], (i, name)


def test_sum_log_of_a_product_that_dips_below_the_normal_range() -> None:
    from metapsych.stats.batch import _Groups

    x = np.array([1e-160, 1e-160, 1e160, 1e150])
    got = float(_Groups(np.array([0]), np.array([x.size])).sum_log(x)[0])
    assert got == pytest.approx(math.fsum(np.log(x).tolist()), rel=1e-13)


def test_reml_boundary_path_with_a_dominating_study() -> None:
    yi, vi = np.array([2.67e-04, -0.665, 0.3295]), np.array([1e-7, 0.368, 0.146])
    groups = np.zeros(3, int)
    _assert_like_fit(fit_many(yi, vi, groups), yi, vi, groups, "REML", "z")


def test_maxiter_counts_metafors_iterations() -> None:
    yi, vi = np.array([0.7, -1.27, 0.33, 0.82]), np.array([0.1, 0.21, 0.08, 0.28])
    groups = np.zeros(4, int)
    control = Control(maxiter=3)
    batch = fit_many(yi, vi, groups, control=control)
    _assert_like_fit(batch, yi, vi, groups, "REML", "z", control=control)


def test_t_quantiles_for_huge_df() -> None:
    from scipy import stats

    df = np.array([1e8, 1e12, 1e15] * 6)  # long enough for the lock-step path
    np.testing.assert_allclose(dist.t_crit(0.05, df), stats.t.isf(0.025, df), rtol=1e-9)
    np.testing.assert_allclose(dist.t_crit(0.05, 1e12), stats.t.isf(0.025, 1e12), rtol=1e-9)


# ------------------------------------------------------------------------------------------ exact helpers


def test_feasible_steps_one_by_one_and_in_lock_step_are_metafors_halving() -> None:
    """The first feasible step of adj, adj/2, adj/4, ... (metafor's loop), found with a jump, equals plain
    halving bit for bit, for tau2 from 0 and 1e-300 to 1e3 and steps up to 1e300 times too long."""
    from metapsych.stats.batch import _feasible_step, _feasible_steps

    rng = np.random.default_rng(11)
    t = np.abs(rng.normal(0.0, 1.0, 3000)) * 10.0 ** rng.integers(-300, 3, 3000)
    t[:20] = 0.0
    adj = -t * (1.0 + np.abs(rng.normal(0.0, 1.0, t.size)) * 10.0 ** rng.integers(-17, 300, t.size)) - (t == 0)

    def halved(ti: float, ai: float) -> float:
        while ti + ai < 0:
            ai /= 2.0
        return ti + ai

    expected = np.array([halved(ti, ai) for ti, ai in zip(t.tolist(), adj.tolist())])
    alone = np.array([ti + _feasible_step(ti, ai) for ti, ai in zip(t.tolist(), adj.tolist())])
    np.testing.assert_array_equal(alone, expected)
    np.testing.assert_array_equal(t + _feasible_steps(t, adj), expected)


def test_block_sums_add_as_reduceat_does() -> None:
    """The block layout's column sums (rows in ``_block_order``) are ``np.add.reduceat``'s, bit for bit, for
    1 to 700 studies per analysis (numpy's pairwise blocks of 8, its tree, its halving beyond 128, -0.0)."""
    from metapsych.stats.batch import _block_order, _block_sum

    rng = np.random.default_rng(4)
    for k in [*range(1, 140), 255, 256, 257, 300, 511, 700]:
        x = rng.normal(0.0, 1.0, (k, 13)) * 10.0 ** rng.integers(-12, 12, (k, 13))
        x[rng.random(x.shape) < 0.03] = -0.0
        expected = np.add.reduceat(x.T.ravel(), np.arange(13) * k)
        rows, back = _block_order(k)
        np.testing.assert_array_equal(_block_sum(x[rows]).view(np.int64), expected.view(np.int64), err_msg=str(k))
        np.testing.assert_array_equal(x[rows][back], x)
    assert math.copysign(1.0, float(_block_sum(np.full((3, 1), -0.0))[0])) == -1.0


@pytest.mark.parametrize("k", [1, 2, 9, 20])
def test_block_layout_changes_no_bit(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Analyses of equal size laid out as blocks (``_Blocks``; from 8 analyses here, so that sub-problems
    go both ways between the layouts) give the flat layout's results bit for bit, for every estimator, with
    labels unsorted, Q-profile intervals and t-based tests."""
    from metapsych.stats import batch

    rng = np.random.default_rng(k)
    n_analyses = 40
    groups = np.repeat(np.arange(n_analyses), k)
    vi = rng.uniform(0.005, 0.3, groups.size)
    yi = rng.normal(0.0, np.sqrt(vi + rng.choice([0.0, 0.01, 0.2], n_analyses)[groups]))
    rows = rng.permutation(groups.size)
    for estimator in ESTIMATORS:
        for data in ((yi, vi, groups), (yi[rows], vi[rows], groups[rows])):
            fits = []
            for smallest in (8, 10**9):
                monkeypatch.setattr(batch, "BLOCK_MIN_ANALYSES", smallest)
                fits.append(fit_many(*data, estimator=estimator, test="knha"))
            _assert_identical(*fits)
            np.testing.assert_array_equal(fits[0].weights, fits[1].weights)


# A REML analysis whose full Fisher-scoring steps never settle (a chaotic path; metafor 3.8 with threshold
# 1e-10 and maxiter 10000: "Fisher scoring algorithm did not converge"), found among 4,000 random analyses.
CHAOTIC_Y = np.array([0.7198645752460251, 0.8249814409380087, 0.17107885473566187, 0.6752922574861505, 0.3930994050576909, 0.6459011739207383, -0.034524826843513434, 0.24238504505750058, 0.5016621721236538, 0.3805581772499135, 0.5413836513947036, 0.22212239482923607, 0.23164335778019168, 0.5728650436407882, 0.2561808874378312, 0.18916231575186565, 0.2821785860766567, 0.4901789050382505, 0.7957182470500799, 0.4951585505999546])
CHAOTIC_V = np.array([0.016988734382623105, 0.18047544358812556, 0.14903332038972625, 0.1814968602752018, 0.05561171549959935, 0.17741478851403186, 0.15619941945742877, 0.17612000593915902, 0.05368547909718783, 0.11428167465944641, 0.14686899507173604, 0.14828785207784728, 0.06562937864819024, 0.04742633113911295, 0.19615209289724497, 0.17294691132633572, 0.09501468527577635, 0.14939240476068744, 0.07024903833852877, 0.044748400191112064])
# rma(y, v, method = "REML", control = list(threshold = 1e-10, tol = 1e-12, maxiter = 100000, stepadj = 0.5))
CHAOTIC_HALVED = {"tau2": 0.00088877725371532706, "estimate": 0.50200326080594515, "se": 0.063370834061058437,
                  "I2": 1.0654885103196683, "Q": 11.326550911464727}


def test_a_path_that_never_converges_is_refitted_with_half_steps_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch has run the full-step path to maxiter already: the refit goes straight to metafor's retry with
    step halving (rma.fit would first repeat the 10,000 full steps, a second per analysis), with fit's result
    and message, and metafor's numbers."""
    from metapsych.stats import tau2 as tau2_module

    y = np.concatenate([CHAOTIC_Y, CHAOTIC_Y[::-1] + 0.3])
    v = np.concatenate([CHAOTIC_V, CHAOTIC_V[::-1]])
    groups = np.repeat([0, 1], CHAOTIC_Y.size)
    full_steps = []
    original = tau2_module._fisher
    monkeypatch.setattr(tau2_module, "_fisher", lambda *a: full_steps.append(a[5].stepadj == 1.0) or original(*a))
    batch = fit_many(y, v, groups)
    assert not any(full_steps)
    monkeypatch.setattr(tau2_module, "_fisher", original)
    one = fit(CHAOTIC_Y, CHAOTIC_V)
    assert batch.converged[0] and batch.messages[0] == one.message == "REML: converged with step halving (stepadj = 0.5)"
    assert batch.tau2[0] == one.tau2 and batch.estimate[0] == one.estimate
    got = {"tau2": batch.tau2[0], "estimate": batch.estimate[0], "se": batch.se[0], "I2": batch.I2[0], "Q": batch.Q[0]}
    for name, value in CHAOTIC_HALVED.items():
        assert close(got[name], value), name


def test_newton_analysis_out_of_iterations_follows_metafors_path() -> None:
    """With a small maxiter, an analysis on Newton steps may still be moving when the iterations run out: then
    metafor's own path decides, counted as metafor counts (a step after maxiter fails even if it settles).
    R: rma(y, v, method = "REML", control = list(threshold = 1e-10, tol = 1e-12, maxiter = m)) fails for
    m = 1, 2 and gives tau2 = 0.020951767558328834 from m = 3; with stepadj = 0.5 (maxiter 20) tau2 =
    0.020951767507323749, p = 2.3756997162120977e-21."""
    y = np.array([0.6200295840364607, 0.5299931483466322, 0.28953522180833546, 0.2882353416570351,
                  0.6265256176398573, 0.6899689164626068, 0.5452348326093107, 0.47225745934176394])
    v = np.array([0.0028922017310025467, 0.002719237761753987, 0.001160245523557032, 0.0018324653674059504,
                  0.0028599755591127486, 0.0017446952803617953, 0.0008693597673451068, 0.000309737085709837])
    for maxiter, message, tau2 in ((2, "REML: converged with step halving (stepadj = 0.5)", 0.020951767507323749),
                                   (3, None, 0.020951767558328834)):
        control = Control(threshold=1e-10, maxiter=maxiter)
        for test in ("z", "knha"):
            batch, one = fit_many(y, v, np.zeros(y.size), estimator="REML", test=test, control=control), \
                fit(y, v, estimator="REML", test=test, control=control)
            assert one.converged and one.message == message
            assert batch.converged[0] and batch.messages[0] == message
            assert close(batch.tau2[0], tau2) and close(one.tau2, tau2)
            assert close(batch.p_value[0], float(one.p_value[0]))
            if (maxiter, test) == (2, "z"):
                assert close(float(batch.p_value[0]), 2.3756997162120977e-21)


def test_omnibus_test_of_identical_effects_with_knha_is_undefined_like_fit() -> None:
    """Identical effects with knha: the variance of the estimate is 0, and rma.fit (like metafor) gives no QM;
    the batch's fit gave QM = inf, QM_p = 0 (found in review)."""
    y, v = np.full(4, -0.25), np.array([0.04, 0.05, 0.06, 0.07])
    one, batch = fit(y, v, test="knha"), fit_many(y, v, np.zeros(4), test="knha")[0]
    assert math.isnan(one.QM) and math.isnan(one.QM_p)
    assert math.isnan(batch.QM) and math.isnan(batch.QM_p)
    regular = fit_many(np.array([0.1, 0.4, -0.2, 0.3]), v, np.zeros(4), test="knha")[0]
    assert regular.QM == regular.statistic[0] ** 2 and regular.QM_p == regular.p_value[0]


def test_without_retry_a_path_that_never_converges_stays_failed() -> None:
    """``retry=False`` (permutation tests, as metafor's rma() does not retry): the chaotic analysis is left
    as not converged with NaN numbers, the other is fitted as with the retry."""
    y = np.concatenate([CHAOTIC_Y, [0.1, 0.3, 0.5, 0.2]])
    v = np.concatenate([CHAOTIC_V, [0.05, 0.04, 0.06, 0.05]])
    groups = np.repeat([0, 1], [CHAOTIC_Y.size, 4])
    plain, retried = fit_many(y, v, groups, retry=False), fit_many(y, v, groups)
    assert not plain.converged[0] and np.isnan(plain.estimate[0]) and plain.messages[0] == "REML: did not converge"
    assert plain.converged[1] and plain.estimate[1] == retried.estimate[1] and plain.tau2[1] == retried.tau2[1]
