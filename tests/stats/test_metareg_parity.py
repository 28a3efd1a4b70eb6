"""Meta-regression (numeric and categorical moderators) against metafor's rma(mods = ~ ...)."""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats.metareg import design_matrix, meta_regression

from .oracle import assert_close, load_csv, load_json

DATASETS = ["bcg", "normand", "thirdwave", "suicideprevention", "random_mods"]
MODELS = {"REML": ("REML", "z"), "REML_knha": ("REML", "knha"), "ML": ("ML", "z"), "DL": ("DL", "z"),
          "DL_knha": ("DL", "knha"), "EE": ("EE", "z")}


def _moderators(name: str) -> tuple[np.ndarray, np.ndarray, dict[str, list[object]]]:
    rows = load_csv(name)
    yi = np.array([float(r["yi"]) for r in rows])
    vi = np.array([float(r["vi"]) if "vi" in r else float(r["sei"]) ** 2 for r in rows])
    cols = ["moderator"] + [c for c in rows[0] if c.startswith("mod_")]

    def value(text: str) -> object:
        try:
            return float(text)
        except ValueError:
            return text

    return yi, vi, {c: [value(r[c]) for r in rows] for c in cols}


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_meta_regression(name: str, model: str) -> None:
    block = load_json(name)["meta_regression"][model]
    yi, vi, mods = _moderators(name)
    estimator, test = MODELS[model]
    res = meta_regression(yi, vi, mods, estimator=estimator, test=test)
    f = res.fit
    names = block["coef_names"]
    assert list(res.names) == names
    for ours, theirs in (("beta", "b"), ("se", "se"), ("statistic", "zval"), ("p_value", "pval"),
                         ("ci_lower", "ci.lb"), ("ci_upper", "ci.ub")):
        assert_close(f"{name}/{model} {ours}", getattr(f, ours), [block[theirs][n] for n in names])
    for ours, theirs in (("tau2", "tau2"), ("Q", "QE"), ("Q_p", "QEp"), ("I2", "I2"), ("H2", "H2"),
                         ("QM", "QM"), ("QM_p", "QMp"), ("R2", "R2")):
        assert_close(f"{name}/{model} {ours}", getattr(f, ours), block[theirs])
    assert_close(f"{name}/{model} tau2_se", f.tau2_se, block["se.tau2"])
    assert f.QM_df == block["QMdf"][0]
    assert_close(f"{name}/{model} vb", f.vb.ravel(), np.asarray(block["vb"], dtype=float).ravel().tolist())


def test_design_reference_level_and_missing_rows() -> None:
    d = design_matrix({"x": [1.0, 2.0, None, 4.0], "g": ["b", "a", "a", "B"]})
    assert d.names == ("intrcpt", "x", "gb", "gB")
    assert d.rows.tolist() == [0, 1, 3]
    assert d.X.tolist() == [[1, 1, 1, 0], [1, 2, 0, 0], [1, 4, 0, 1]]


BCG_YI = [-0.889311333920205, -1.58538865720143, -1.34807314829969, -1.44155119002131, -0.217547322211296,
          -0.786115585818864, -1.62089822359839, 0.0119523335238405, -0.469417648738149, -1.37134480347278,
          -0.339358828338391, 0.445913400571379, -0.0173139482168798]
BCG_VI = [0.325584765003961, 0.194581121398144, 0.415367965367965, 0.0200100319022476, 0.0512101721696309,
          0.00690561845590876, 0.223017247572315, 0.00396157929781773, 0.056434210463249, 0.0730247936130289,
          0.0124122139715597, 0.532505845200153, 0.0714046596839863]
BCG_ABLAT = [44.0, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33]
BCG_YEAR = [1948.0, 1949, 1960, 1977, 1973, 1953, 1973, 1980, 1968, 1961, 1974, 1969, 1976]


def test_collinear_moderators_are_dropped_as_metafor_drops_them() -> None:
    """R 4.2, metafor 3.8-1: ``dat <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg);
    dat$a2 <- 2 * dat$ablat; r <- rma(yi, vi, mods = ~ ablat + a2, data = dat)`` warns "Redundant predictors
    dropped from the model." and fits ~ ablat; ``rma(yi, vi, mods = ~ ablat + year + I(ablat + year),
    data = dat[1:4, ], method = "EE")`` drops the third column (digits = 17). It raised RankDeficientError."""
    from metapsych.stats.bias import METAFOR_DEFAULT  # rma()'s own control, as in the R call

    res = meta_regression(np.array(BCG_YI), np.array(BCG_VI), {"ablat": BCG_ABLAT, "a2": [2 * a for a in BCG_ABLAT]},
                          control=METAFOR_DEFAULT)
    assert res.dropped == ("a2",) and res.names == ("intrcpt", "ablat") and "a2" in res.fit.message
    f = res.fit
    assert np.allclose(f.beta, [0.2514642943742850245, -0.0291016609280148400], rtol=1e-8)
    assert np.allclose(f.se, [0.2491036663891326441, 0.0071955547570809126], rtol=1e-8)
    assert f.QM == pytest.approx(16.3571255721593900034, rel=1e-8)
    assert f.tau2 == pytest.approx(0.0763546947056598230, rel=1e-7) and f.R2 == pytest.approx(75.6244783614905, rel=1e-7)
    four = meta_regression(np.array(BCG_YI[:4]), np.array(BCG_VI[:4]),
                           {"ablat": BCG_ABLAT[:4], "year": BCG_YEAR[:4],
                            "sum": [a + b for a, b in zip(BCG_ABLAT[:4], BCG_YEAR[:4])]}, estimator="EE")
    assert four.dropped == ("sum",)
    assert np.allclose(four.fit.beta, [2.888936427271602270, -0.035919020631356414, -0.001248625871384107], rtol=1e-7)
    assert four.fit.QM == pytest.approx(0.658280091404559675, rel=1e-7)
