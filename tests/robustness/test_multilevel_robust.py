"""Three-level REML and cluster-robust inference against metafor rma.mv / robust() / clubSandwich."""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats.multilevel import compound_symmetric_v, fit_three_level
from metapsych.stats.rma import fit
from metapsych.stats.robust import SingleClusterError, cr1, cr2
from robustness_ref import assert_close, load_csv, load_json

NAMES = ["chernobyl", "clustered_random"]


@pytest.mark.parametrize("name", NAMES)
def test_three_level_reaches_refined_reml_optimum(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.rma_mv.json")["three_level_refined"]
    f = fit_three_level(d["yi"], d["vi"], d["study"])
    assert f.converged
    assert_close(f.sigma2, ref["sigma2"], rtol=1e-7)
    for ours, key in [(f.beta, "b"), (f.se, "se"), (f.statistic, "zval"), (f.p_value, "pval"),
                      (f.ci_lower, "ci.lb"), (f.ci_upper, "ci.ub"), (f.Q, "QE"), (f.Q_p, "QEp")]:
        assert_close(ours, ref[key])
    assert_close(f.loglik, ref["fit_stats"]["REML"]["ll"], rtol=1e-9)
    assert f.loglik >= ref["refine"]["ll_nlminb"] - 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_variance_split_and_prediction(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.rma_mv.json")
    nlminb = ref["three_level"]["REML"]["sigma2"]
    f = fit_three_level(d["yi"], d["vi"], d["study"], sigma2=nlminb)
    i2 = ref["I2_multilevel"]
    assert_close([f.I2_total, f.I2_between, f.I2_within],
                 [i2["total"], i2["level3_between_cluster"], i2["level2_within_cluster"]], rtol=1e-9)
    assert_close([f.pi_lower, f.pi_upper], [ref["predict"]["pi.lb"], ref["predict"]["pi.ub"]], rtol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_t_test_version(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.rma_mv.json")["three_level"]["REML_t"]
    f = fit_three_level(d["yi"], d["vi"], d["study"], test="t", sigma2=ref["sigma2"])
    assert f.df == ref["df"]["intrcpt"]
    assert_close([f.se[0], f.ci_lower[0], f.p_value[0]], [ref["se"], ref["ci.lb"], ref["pval"]], rtol=1e-9)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("adjust,key", [(True, "robust_CR1_adjust"), (False, "robust_CR0_noadjust")])
def test_cr1_matches_metafor_robust(name: str, adjust: bool, key: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.rma_mv.json")["three_level_refined"][key]
    f = fit_three_level(d["yi"], d["vi"], d["study"])
    r = cr1(f.yi, f.x, f.marginal, f.beta, f.cluster_codes, adjust=adjust)
    assert r.n_clusters == ref["n_clusters"]
    for ours, k in [(r.se, "se"), (r.statistic, "tval"), (r.df, "df"), (r.p_value, "pval"),
                    (r.ci_lower, "ci.lb"), (r.ci_upper, "ci.ub")]:
        assert_close(ours, ref[k])


@pytest.mark.parametrize("name", NAMES)
def test_cr2_matches_clubsandwich(name: str) -> None:
    """CR2 algebra on the very model the oracle used (its nlminb sigma2)."""
    d = load_csv(name)
    ref = load_json(f"{name}.rma_mv.json")
    f = fit_three_level(d["yi"], d["vi"], d["study"], sigma2=ref["three_level"]["REML"]["sigma2"])
    want = ref["robust"]["CR2_clubSandwich"]
    r = cr2(f.yi, f.x, f.marginal, f.beta, f.cluster_codes)
    for ours, k in [(r.se, "se"), (r.df, "df"), (r.p_value, "pval"), (r.ci_lower, "ci.lb"), (r.ci_upper, "ci.ub")]:
        assert_close(ours, want[k], rtol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_robust_on_two_level_fit(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.rma_mv.json")["two_level"]["REML"]
    u = fit(d["yi"], d["vi"])
    codes = fit_three_level(d["yi"], d["vi"], d["study"], sigma2=[0, 0]).cluster_codes
    marginal = np.diag(d["vi"] + u.tau2)
    x = np.ones((d["yi"].size, 1))
    r1 = cr1(d["yi"], x, marginal, u.beta, codes)
    r2 = cr2(d["yi"], x, marginal, u.beta, codes)
    assert_close([r1.se[0], r1.ci_lower[0]], [ref["robust_CR1_adjust"]["se"], ref["robust_CR1_adjust"]["ci.lb"]])
    want = ref["robust_CR2_clubSandwich"]
    assert_close([r2.se[0], r2.df[0], r2.ci_upper[0]], [want["se"], want["df"], want["ci.ub"]])


def test_single_cluster_is_a_clear_error() -> None:
    y = np.array([0.1, 0.3, 0.2])
    v = np.array([0.01, 0.02, 0.03])
    f = fit_three_level(y, v, ["a", "a", "a"])
    with pytest.raises(SingleClusterError, match="at least two clusters"):
        cr1(f.yi, f.x, f.marginal, f.beta, f.cluster_codes)
    with pytest.raises(SingleClusterError, match="at least two clusters"):
        cr2(f.yi, f.x, f.marginal, f.beta, f.cluster_codes)


def test_compound_symmetric_v() -> None:
    v = compound_symmetric_v(np.array([0.04, 0.09, 0.01]), ["a", "a", "b"], 0.5)
    assert_close(v.ravel(), [0.04, 0.03, 0, 0.03, 0.09, 0, 0, 0, 0.01], rtol=1e-12)


def test_fit_is_deterministic_under_permutation_within_clusters() -> None:
    d = load_csv("clustered_random")
    perm = np.random.default_rng(1).permutation(d["yi"].size)
    a = fit_three_level(d["yi"], d["vi"], d["study"])
    b = fit_three_level(d["yi"][perm], d["vi"][perm], [d["study"][i] for i in perm])
    assert_close(b.sigma2, a.sigma2, rtol=1e-7)
    assert_close(b.beta, a.beta, rtol=1e-9)


@pytest.mark.parametrize("s", range(1, 7))
def test_random_sets_including_boundaries(s: int) -> None:
    """Six seeded random sets (make_ml_sets.R); several have a variance component at 0."""
    d = load_csv(f"ml_set{s}")
    ref = load_json(f"ml_set{s}.rma_mv.json")["three_level_refined"]
    f = fit_three_level(d["yi"], d["vi"], d["study"])
    assert_close(f.sigma2, ref["sigma2"], rtol=1e-7, atol=1e-10)
    assert_close([f.estimate, f.se[0], f.ci_lower[0], f.ci_upper[0], f.Q],
                 [ref["b"], ref["se"], ref["ci.lb"], ref["ci.ub"], ref["QE"]])
    rob = cr1(f.yi, f.x, f.marginal, f.beta, f.cluster_codes)
    want = ref["robust_CR1_adjust"]
    assert_close([rob.se[0], rob.ci_lower[0], rob.ci_upper[0], rob.p_value[0]],
                 [want["se"], want["ci.lb"], want["ci.ub"], want["pval"]])


@pytest.mark.parametrize("seed", range(6))
def test_block_reml_equals_dense_reml(seed: int) -> None:
    """The REML quantities from M^-1's cluster blocks equal those from the k x k matrices."""
    from metapsych.stats import multilevel as ml

    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(40), rng.integers(1, 5, 40))
    rng.shuffle(codes)
    v = rng.uniform(0.01, 0.3, codes.size)
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    x = np.column_stack([np.ones(codes.size), rng.normal(size=codes.size)])[:, :1 + seed % 2]
    vmat = np.diag(v) if seed % 3 else ml.compound_symmetric_v(v, list(codes), 0.6)
    design = ml._design(ml.cluster_codes(list(codes)), vmat)
    assert design.block_diagonal
    for s2 in (np.array([0.05, 0.02]), np.array([0.0, 0.1]), np.array([0.2, 0.0])):
        dense, blocks = ml._reml_dense(y, vmat, x, design, s2), ml._reml_blocks(y, vmat, x, design, s2)
        for name in ("loglik", "score", "info", "observed"):
            np.testing.assert_allclose(getattr(blocks, name), getattr(dense, name), rtol=1e-10, atol=1e-12)
