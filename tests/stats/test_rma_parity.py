"""metafor parity of ``metapsych.stats.rma.fit`` for every estimator and test, on every fixture."""

from __future__ import annotations

import pytest

from metapsych.stats.rma import fit

from .oracle import assert_close, load_json, yi_vi

DATASETS = ["bcg", "normand", "thirdwave", "suicideprevention", "random_mods", "edge_k2", "edge_identical",
            "edge_extreme", "edge_varrange", "edge_subgroup_single", "edge_k1"]
ESTIMATORS = ["EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ"]


def _compare(label: str, res, block: dict, with_tau2_se: bool = True) -> None:
    assert_close(f"{label} b", res.beta, block["b"])
    assert_close(f"{label} se", res.se, block["se"])
    assert_close(f"{label} z", res.statistic, block["zval"])
    assert_close(f"{label} p", res.p_value, block["pval"])
    assert_close(f"{label} ci.lb", res.ci_lower, block["ci.lb"])
    assert_close(f"{label} ci.ub", res.ci_upper, block["ci.ub"])
    assert_close(f"{label} tau2", res.tau2, block["tau2"])
    if with_tau2_se:
        assert_close(f"{label} se.tau2", res.tau2_se, block["se.tau2"])
    for ours, theirs in (("I2", "I2"), ("H2", "H2"), ("vt", "vt"), ("Q", "QE"), ("Q_p", "QEp")):
        assert_close(f"{label} {ours}", getattr(res, ours), block[theirs])
    assert_close(f"{label} weights", res.weights, block["weights_pct"])
    if "df" in block:
        assert_close(f"{label} df", res.df, block["df"])


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimators(name: str, estimator: str) -> None:
    ref = load_json(name)
    block = ref["estimators"][estimator]
    assert "error" not in block
    yi, vi = yi_vi(name)
    res = fit(yi, vi, estimator=estimator, level=ref["meta"]["level"] / 100)
    assert res.converged
    _compare(f"{name}/{estimator}", res, block)


@pytest.mark.parametrize("name", [d for d in DATASETS if d != "edge_k1"])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_knha(name: str, estimator: str) -> None:
    block = load_json(name)["knha"][estimator]
    yi, vi = yi_vi(name)
    res = fit(yi, vi, estimator=estimator, test="knha")
    _compare(f"{name}/{estimator}/knha", res, block)
    assert_close("s2w", res.s2w, block["s2w"])


@pytest.mark.parametrize("name", [d for d in DATASETS if d != "edge_k1"])
@pytest.mark.parametrize("section,test", [("adhoc", "adhoc"), ("t_test", "t")])
def test_adhoc_and_t(name: str, section: str, test: str) -> None:
    yi, vi = yi_vi(name)
    for estimator, block in load_json(name)[section].items():
        _compare(f"{name}/{estimator}/{test}", fit(yi, vi, estimator=estimator, test=test), block)


@pytest.mark.parametrize("name", DATASETS)
def test_prediction_interval(name: str) -> None:
    yi, vi = yi_vi(name)
    for key, block in load_json(name)["predict"].items():
        estimator, _, suffix = key.partition("_")
        if estimator == "GENQM":  # needs CompQuadForm in R; not offered here
            continue
        res = fit(yi, vi, estimator=estimator, test="knha" if suffix == "knha" else "z")
        pred = block["default"] if "default" in block else block
        assert_close(f"{name}/{key} pi.lb", res.pi_lower, pred["pi.lb"])
        assert_close(f"{name}/{key} pi.ub", res.pi_upper, pred["pi.ub"])


def test_thirdwave_level90() -> None:
    ref = load_json("thirdwave_level90")
    yi, vi = yi_vi("thirdwave")
    for estimator in ("REML", "DL", "PM"):
        _compare(f"level90/{estimator}", fit(yi, vi, estimator=estimator, level=0.90), ref["estimators"][estimator])
        _compare(f"level90/{estimator}/knha", fit(yi, vi, estimator=estimator, test="knha", level=90),
                 ref["knha"][estimator])


def test_book_thirdwave_reml_knha() -> None:
    """Harrer et al. (2021) ch. 4.2.1: SMD = 0.5771 [0.3782; 0.7760], tau^2 = 0.0820, Q = 45.50."""
    yi, vi = yi_vi("thirdwave")
    res = fit(yi, vi, estimator="REML", test="knha")
    assert round(res.estimate, 4) == 0.5771
    assert [round(c, 4) for c in res.ci] == [0.3782, 0.7760]
    assert round(res.tau2, 4) == 0.0820
    assert round(res.Q, 2) == 45.50
    pm = fit(yi, vi, estimator="PM")
    # the book's 0.1104957 / 0.5873544 come from a loose default tolerance (eps^0.25); tight gives 0.1104858
    assert round(pm.tau2, 4) == 0.1105 and round(pm.estimate, 5) == 0.58735
