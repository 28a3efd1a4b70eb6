"""Session 5 review: metafor parity on published data sets and random draws the other fixtures do not cover.

Reference values: R 4.2 / metafor 3.8-1 on the data of tests/review/fixtures (README there, scripts next
to the data). Compared at 1e-6 relative / 1e-8 absolute, as every parity test.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from metapsych.cli import app
from metapsych.stats.subgroup import subgroup_analysis

FIXTURES = Path(__file__).parent / "fixtures"
RTOL, ATOL = 1e-6, 1e-8
SUBGROUP_SETS = ["subgroup_bangertdrowns2004", "subgroup_hackshaw1998"]
ESTIMATORS = ["DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ"]


def _rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / f"{name}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _close(actual: float, expected: float) -> bool:
    return math.isfinite(actual) and abs(actual - expected) <= max(ATOL, RTOL * abs(expected))


@pytest.mark.parametrize("name", SUBGROUP_SETS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("test", ["z", "knha"])
def test_common_tau2_subgroup_test_matches_metafor(name: str, estimator: str, test: str) -> None:
    """QM of rma(yi, vi, mods = ~ factor(subgroup)) for every estimator; GENQ's QM rests on the GENQ-weighted
    level means and their sandwich variances (it used the 1/(vi + tau2)-weighted means before)."""
    rows = _rows(name)
    ref = json.loads((FIXTURES / f"{name}.common_tau2.json").read_text())[f"{estimator}_{test}"]
    result = subgroup_analysis(np.array([float(r["yi"]) for r in rows]), np.array([float(r["vi"]) for r in rows]),
                               [r["subgroup"] for r in rows], estimator=estimator, test=test)
    common = result.common
    assert common is not None
    for label, ours, theirs in (("QM", common.QM, ref["QM"]), ("QMp", common.p_value, ref["QMp"]),
                                ("tau2", common.tau2, ref["tau2"])):
        assert _close(ours, theirs), f"{label}: {ours!r} != metafor {theirs!r}"
    assert common.df == ref["QMdf"][0]
    if test == "knha":
        assert common.df2 == ref["QMdf"][1]


def test_pool_by_subgroup_reports_metafor_genq_test() -> None:
    """The CLI contract's test_common_tau2 carries the same numbers."""
    ref = json.loads((FIXTURES / "subgroup_hackshaw1998.common_tau2.json").read_text())["GENQ_z"]
    result = CliRunner().invoke(app, ["pool", str(FIXTURES / "subgroup_hackshaw1998.csv"), "--by", "subgroup",
                                      "--estimator", "GENQ", "--json"])
    assert result.exit_code == 0, result.stdout
    common = json.loads(result.stdout)["test_common_tau2"]
    assert _close(common["QM"], ref["QM"]) and _close(common["p_value"], ref["QMp"])


def _labels_fixture() -> dict:
    return json.loads((FIXTURES / "metareg_labels.json").read_text())


def test_levels_sort_as_r_sorts_strings() -> None:
    """R's sort() uses ICU collation: punctuation before digits before letters, then accents, then case."""
    from metapsych.stats.metareg import r_sort_key
    from metapsych.stats.subgroup import subgroup_levels

    expected = _labels_fixture()["sorted"]
    shuffled = expected[::-1][1::2] + expected[::-1][::2]
    assert sorted(shuffled, key=r_sort_key) == expected
    assert list(subgroup_levels(shuffled)) == expected


@pytest.mark.parametrize("estimator", ["REML", "DL"])
def test_categorical_moderator_takes_rs_reference_level(estimator: str) -> None:
    """Labels "<1 week", "1-2 weeks", ">2 weeks": R's reference level is "<1 week" (it was "1-2 weeks")."""
    from metapsych.stats.metareg import meta_regression

    rows = _rows("metareg_labels")
    ref = _labels_fixture()[estimator]
    result = meta_regression(np.array([float(r["yi"]) for r in rows]), np.array([float(r["vi"]) for r in rows]),
                             {"contact": [r["contact"] for r in rows]}, estimator=estimator)
    assert list(result.names) == ref["coef_names"]
    fitted = result.fit
    for label, ours, theirs in (("b", fitted.beta, ref["b"]), ("se", fitted.se, ref["se"]),
                                ("pval", fitted.p_value, ref["pval"]), ("ci.lb", fitted.ci_lower, ref["ci.lb"]),
                                ("ci.ub", fitted.ci_upper, ref["ci.ub"])):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert _close(float(a), b), f"{label}[{i}]: {a!r} != metafor {b!r}"
    assert _close(fitted.QM, ref["QM"]) and _close(fitted.QM_p, ref["QMp"])


@pytest.mark.parametrize("key", ["REML_L0", "REML_R0", "DL_L0", "DL_R0", "EE_L0", "EE_R0"])
def test_trimfill_with_one_study_left_after_trimming(key: str) -> None:
    """k = 3 with two studies trimmed: metafor's estimate from the one study left differs from its yi in the
    last bits, and the sign of that residual enters the ranks (se.k0 1.693, was 1.488)."""
    from metapsych.stats import bias

    rows = _rows("trimfill_k3_two_trimmed")
    ref = json.loads((FIXTURES / "trimfill_k3_two_trimmed.trimfill.json").read_text())[key]
    estimator, k0_estimator = key.split("_")
    result = bias.trimfill(np.array([float(r["yi"]) for r in rows]), np.array([float(r["vi"]) for r in rows]),
                           estimator=estimator, k0_estimator=k0_estimator)
    assert result.k0 == ref["k0"] and result.side == ref["side"]
    fitted = result.fit
    for label, ours, theirs in (("se.k0", result.se_k0, ref["se.k0"]), ("b", fitted.estimate, ref["b"]),
                                ("se", fitted.se[0], ref["se"]), ("ci.lb", fitted.ci_lower[0], ref["ci.lb"]),
                                ("ci.ub", fitted.ci_upper[0], ref["ci.ub"]), ("pval", fitted.p_value[0], ref["pval"]),
                                ("QE", fitted.Q, ref["QE"])):
        assert _close(float(ours), theirs), f"{label}: {ours!r} != metafor {theirs!r}"
    assert abs(fitted.tau2 - ref["tau2"]) <= max(ATOL, RTOL * ref["tau2"])


QPROFILE_CASES = ["DL_95", "DL_90", "REML_95", "REML_90"]


def _qprofile_data() -> tuple[np.ndarray, np.ndarray]:
    rows = _rows("qprofile_tiny_variances")
    return np.array([float(r["yi"]) for r in rows]), np.array([float(r["vi"]) for r in rows])


def _qprofile_ref(case: str) -> dict:
    return json.loads((FIXTURES / "qprofile_tiny_variances.qprofile.json").read_text())[case]


@pytest.mark.parametrize("case", QPROFILE_CASES)
def test_qprofile_bounds_where_uniroot_tolerance_is_not_small(case: str) -> None:
    """Variances of 1e-8: the tau^2 bounds (3e-10 to 1e-8) are not large next to uniroot's tol = 1e-12, so
    metafor's interval is where uniroot stops; I^2 and H^2 bounds differed by up to 2e-4 (relative)."""
    from metapsych.stats.heterogeneity import confint_tau2
    from metapsych.stats.rma import fit

    y, v = _qprofile_data()
    estimator, level = case.split("_")
    ref = _qprofile_ref(case)
    fitted = fit(y, v, estimator=estimator, level=int(level) / 100)
    ci = confint_tau2(y, v, fitted)
    for name in ("tau2", "I2", "H2"):
        for bound, theirs in zip(("lower", "upper"), ref[f"{name}_ci"]):
            ours = getattr(ci, f"{name}_{bound}")
            assert abs(ours - theirs) <= RTOL * abs(theirs), f"{name} {bound}: {ours!r} != metafor {theirs!r}"


def test_pool_json_qprofile_bounds_at_level_90() -> None:
    ref = _qprofile_ref("REML_90")
    result = CliRunner().invoke(app, ["pool", str(FIXTURES / "qprofile_tiny_variances.csv"), "--level", "0.9",
                                      "--json"])
    assert result.exit_code == 0, result.stdout
    payload = json.loads(result.stdout)
    for name in ("I2_ci", "H2_ci"):
        for ours, theirs in zip(payload[name], ref[name]):
            assert _close(ours, theirs), f"{name}: {ours!r} != metafor {theirs!r}"


@pytest.mark.parametrize("case", QPROFILE_CASES)
def test_batch_qprofile_bounds_where_uniroot_tolerance_is_not_small(case: str) -> None:
    """The same interval from fit_many (metapsych pool --by, the report's subgroups and cells)."""
    from metapsych.stats.batch import fit_many

    y, v = _qprofile_data()
    estimator, level = case.split("_")
    ref = _qprofile_ref(case)
    batch = fit_many(y, v, np.zeros(y.size, dtype=int), estimator=estimator, level=int(level) / 100)
    vt = float(batch.vt[0])
    for bound, theirs in zip((batch.tau2_ci_lower[0], batch.tau2_ci_upper[0]), ref["I2_ci"]):
        ours = 100.0 * float(bound) / (vt + float(bound))
        assert abs(ours - theirs) <= RTOL * abs(theirs), f"I2 bound: {ours!r} != metafor {theirs!r}"


@pytest.mark.xfail(strict=True, reason="metafor's confint evaluates Q(tau2) as y'Py with the uncentred yi (about 100) "
                   "and w about 1e5: its rounding (1e-6 in Q) moves the lower tau2 bound by 2e-12, 3e-6 of it and of "
                   "the I^2 bound. metapsych's bound is the exact root (checked in rational arithmetic); matching "
                   "would need R's BLAS and LINPACK rounding step for step")
def test_qprofile_bounds_with_large_offset_in_yi() -> None:
    """yi = 100 +- 0.01 with variances of 1e-5 (a random draw): the I^2 bounds at level 90."""
    from metapsych.stats.heterogeneity import confint_tau2
    from metapsych.stats.rma import fit

    rows = _rows("qprofile_offset100")
    y, v = np.array([float(r["yi"]) for r in rows]), np.array([float(r["vi"]) for r in rows])
    ref = json.loads((FIXTURES / "qprofile_offset100.qprofile.json").read_text())["DL_90"]
    ci = confint_tau2(y, v, fit(y, v, estimator="DL", level=0.9))
    assert _close(ci.I2_lower, ref["I2_ci"][0]), f"{ci.I2_lower!r} != metafor {ref['I2_ci'][0]!r}"


@pytest.mark.xfail(strict=True, reason="Both ML tau2 fits stop near 0 (3e-11 and 8e-11) after step halving, where "
                   "tau2 + adj cancels: rounding of 1e-17 in the score moves them by 1e-6 to 5% (relative), within "
                   "the 1e-8 absolute tolerance of tau2 but not of R^2 = 100 (1 - tau2 / tau2_0), which is noise")
def test_ml_meta_regression_r2_with_tau2_near_zero() -> None:
    from metapsych.stats.metareg import meta_regression

    rows = _rows("metareg_ml_tau2_near_zero")
    ref = json.loads((FIXTURES / "metareg_ml_tau2_near_zero.json").read_text())
    result = meta_regression(np.array([float(r["yi"]) for r in rows]), np.array([float(r["vi"]) for r in rows]),
                             {"x": [float(r["x"]) for r in rows], "g": [r["g"] for r in rows]}, estimator="ML")
    assert abs(result.fit.tau2 - ref["tau2"]) <= ATOL
    assert result.fit.R2 is not None and _close(result.fit.R2, ref["R2"]), f"{result.fit.R2!r} != {ref['R2']!r}"


@pytest.mark.xfail(strict=True, reason="metafor's selmodel maximises with optim BFGS on numerical gradients and stops "
                   "short of the maximum (its log-likelihood is 3e-10 lower); on this flat likelihood the estimate "
                   "differs by 1.2e-5 and the lower CI bound by 1.2e-4 (relative). The suite compares at 1e-5")
def test_selection_model_on_molloy2014_to_1e6() -> None:
    from metapsych.stats.selection import step_selection_model

    rows = _rows("selmodel_molloy2014")
    ref = json.loads((FIXTURES / "selmodel_molloy2014.selmodel.json").read_text())["REML"]
    fitted = step_selection_model(np.array([float(r["yi"]) for r in rows]), np.array([float(r["vi"]) for r in rows]))
    assert fitted.loglik >= ref["ll"]
    for label, ours, theirs in (("estimate", fitted.estimate, ref["estimate"]), ("ci.lb", fitted.ci_lower, ref["ci.lb"]),
                                ("tau2", fitted.tau2, ref["tau2"])):
        assert _close(ours, theirs), f"{label}: {ours!r} != metafor {theirs!r}"


def test_trimfill_refits_at_metafors_default_level() -> None:
    """metafor 3.8's trimfill() refits the filled data with rma.uni's defaults, so a model at level 90%
    gets a 95% interval after filling. Reference (R 4.2, metafor 3.8-1):
    dat <- escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)
    tf <- trimfill(rma(yi, vi, data=dat, level=90)); c(tf$k0, tf$ci.lb, tf$ci.ub, tf$level)
    gives 1, -1.0069922, -0.3071734, 0.05."""
    from metapsych.stats import bias

    rows = list(csv.DictReader((Path(__file__).parents[1] / "fixtures" / "metafor" / "bcg.csv").open()))
    y, v = (np.array([float(r[key]) for r in rows]) for key in ("yi", "vi"))
    result = bias.trimfill(y, v, level=0.90)
    assert result.k0 == 1 and result.fit.level == 0.95
    np.testing.assert_allclose([result.fit.ci_lower[0], result.fit.ci_upper[0]], [-1.0069922, -0.3071734], rtol=1e-6)


def test_report_names_the_level_of_a_bias_interval_that_is_not_the_reports() -> None:
    """A cell page of a 90% report says that trim-and-fill's interval is metafor's 95% one."""
    from metapsych.report.views import _bias

    payload = {"trim_and_fill": {"k0": 1, "side": "left", "estimate": -0.6, "ci_lower": -1.0, "ci_upper": -0.3,
                                 "level": 0.95}}
    assert "95% CI" in _bias(payload, 13, 10, 0.9)["rows"][0][1]
    assert "CI," not in _bias(payload, 13, 10, 0.95)["rows"][0][1]
