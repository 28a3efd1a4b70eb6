"""One cell of the results document: its main model, studies, subgroups, cumulative and robustness blocks.

The main model of every estimable cell is fitted beforehand in one batch (``run.fit_main_models``); this
module builds the rest of the cell from that fit and the cell's trial-level inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from metapsych.analysis.models import interval, model_block, number, test_name
from metapsych.analysis.plan import SUBGROUP_COLUMNS

if TYPE_CHECKING:
    from metapsych.analysis.config import Config
    from metapsych.analysis.inputs import CellInputs
    from metapsych.stats.rma import RmaFit


def cell_header(inputs: CellInputs) -> dict:
    """The coordinates and counts every cell has, estimable or not."""
    plan = inputs.plan
    return {
        "id": plan.id, "condition": plan.condition, "approach": plan.approach, "comparator": plan.comparator,
        "time": plan.time, "analysis": plan.analysis, "k": inputs.k, "n_trials": inputs.k,
        "n_participants": inputs.n_participants, "inputs_sha256": inputs.inputs_sha256,
    }


def too_few_cell(inputs: CellInputs) -> dict:
    """A cell below the minimum number of trials: listed, not pooled."""
    message = f"{inputs.k} trial(s); at least {inputs.plan.min_studies} needed to pool"
    return {**cell_header(inputs), "status": "too_few_trials", "message": message, "main": None,
            "sensitivity": [], "studies": _studies(inputs, None), "subgroups": {}, "influence": None,
            "bias": None, "cumulative": []}


def estimated_cell(inputs: CellInputs, fit: RmaFit, config: Config) -> dict:
    """A pooled cell, or a ``failed`` one when the main model did not converge."""
    header = cell_header(inputs)
    if not fit.converged:
        return {**too_few_cell(inputs), "status": "failed", "message": fit.message or "model did not converge"}
    return {
        **header, "status": "ok", "message": fit.message,
        "main": model_block(fit, config, *_heterogeneity_cis(inputs, fit, config)),
        "studies": _studies(inputs, fit),
        "subgroups": {var: _subgroup(inputs, var, config) for var in inputs.plan.subgroups},
        "cumulative": _cumulative(inputs, config),
        "sensitivity": [], "influence": None, "bias": None,
    }


def _heterogeneity_cis(inputs: CellInputs, fit: RmaFit, config: Config) -> tuple:
    from metapsych.stats.heterogeneity import confint_tau2

    ci = confint_tau2(inputs.yi, inputs.vi, fit)
    return (ci.tau2_lower, ci.tau2_upper), (ci.I2_lower, ci.I2_upper)


def _studies(inputs: CellInputs, fit: RmaFit | None) -> list[dict]:
    from scipy import stats

    z = stats.norm.ppf(0.5 + (fit.level if fit is not None else 0.95) / 2)
    weights = fit.weights if fit is not None else [None] * inputs.k
    out = []
    for trial, yi, vi, info, w in zip(inputs.trials, inputs.yi, inputs.vi, inputs.info, weights):
        se = float(np.sqrt(vi))
        out.append({"trial": trial, "yi": number(yi), "vi": number(vi), "se": se,
                    "ci_lower": number(yi - z * se), "ci_upper": number(yi + z * se), "weight": number(w),
                    **{key: info.get(key) for key in ("study", "n_arm1", "n_arm2", "rob", "year", "format",
                                                      "comparator", "formula")}})
    return out


def _subgroup(inputs: CellInputs, variable: str, config: Config) -> dict:
    """Separate random-effects fit per level, the Q-between test, and the common-tau2 mixed-effects QM."""
    from metapsych.stats.rma import fit

    key = "comparator" if SUBGROUP_COLUMNS[variable] == "condition_arm2" else SUBGROUP_COLUMNS[variable]
    key = "rob" if variable == "risk_of_bias" else key
    labels = np.array([str(info.get(key)) if info.get(key) is not None else "" for info in inputs.info])
    levels = sorted({lab for lab in labels if lab})
    test = test_name(config)
    fits = {lev: fit(inputs.yi[labels == lev], inputs.vi[labels == lev], estimator=config.model.estimator,
                     test=test, level=config.model.level) for lev in levels}
    out = {"levels": {lev: model_block(f, config) for lev, f in fits.items()},
           "test": None, "test_common_tau2": None}
    usable = [lev for lev, f in fits.items() if f.converged and np.isfinite(f.se[0])]
    if len(usable) >= 2:
        est = np.array([fits[lev].beta[0] for lev in usable])
        var = np.array([fits[lev].se[0] ** 2 for lev in usable])
        between = fit(est, var, estimator="EE")
        out["test"] = {"Q_between": number(between.Q), "df": int(between.Q_df), "p_value": number(between.Q_p),
                       "method": "separate tau2"}
        out["test_common_tau2"] = _common_tau2_test(inputs, labels, usable, config)
    return out


def _common_tau2_test(inputs: CellInputs, labels: np.ndarray, levels: list[str], config: Config) -> dict | None:
    from metapsych.stats.rma import fit

    keep = np.isin(labels, levels)
    X = np.column_stack([np.ones(keep.sum())] + [(labels[keep] == lev).astype(float) for lev in levels[1:]])
    if keep.sum() <= X.shape[1]:
        return None
    f = fit(inputs.yi[keep], inputs.vi[keep], X=X, estimator=config.model.estimator, test=test_name(config),
            level=config.model.level)
    if not f.converged:
        return None
    df = f.QM_df if np.ndim(f.QM_df) == 0 else list(f.QM_df)
    return {"QM": number(f.QM), "df": df, "p_value": number(f.QM_p)}


def _cumulative(inputs: CellInputs, config: Config) -> list[dict]:
    """Cumulative meta-analysis by publication year (ties by trial id), as metafor's cumul()."""
    from metapsych.stats.rma import fit

    order = sorted(range(inputs.k), key=lambda i: (inputs.info[i].get("year") or 0, inputs.trials[i]))
    out = []
    for n in range(1, len(order) + 1):
        idx = np.array(order[:n])
        f = fit(inputs.yi[idx], inputs.vi[idx], estimator=config.model.estimator, test=test_name(config),
                level=config.model.level)
        i = order[n - 1]
        out.append({"trial": inputs.trials[i], "study": inputs.info[i].get("study"),
                    "year": inputs.info[i].get("year"), "k": n, "estimate": number(f.beta[0]),
                    **dict(zip(("ci_lower", "ci_upper"), interval(f.ci_lower[0], f.ci_upper[0])))})
    return out
