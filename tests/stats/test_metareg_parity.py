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


def test_collinear_moderators_are_rejected() -> None:
    with pytest.raises(ValueError, match="collinear"):
        meta_regression(np.arange(5.0), np.ones(5), {"a": [1.0, 2, 3, 4, 5], "b": [2.0, 4, 6, 8, 10]})
