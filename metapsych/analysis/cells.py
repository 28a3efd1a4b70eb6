"""One cell of the results document: its main model, studies, subgroups, cumulative and robustness blocks.

The main models of all estimable cells, and their cumulative fits, are fitted beforehand in vectorised
batches (``run``); this module builds each cell from those fits and the cell's trial-level inputs.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from metapsych.analysis.models import interval, model_block, test_name
from metapsych.stats.values import finite_or_none

SUBGROUP_KEYS = {"control": "comparator", "format": "format", "risk_of_bias": "rob"}

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


def too_few_cell(inputs: CellInputs, level: float) -> dict:
    """A cell below the minimum number of trials: listed (with its studies), not pooled."""
    message = f"{inputs.k} trial(s); at least {inputs.plan.min_studies} needed to pool"
    return {**cell_header(inputs), "status": "too_few_trials", "message": message, "main": None,
            "sensitivity": [], "studies": _studies(inputs, None, level), "subgroups": {}, "influence": None,
            "bias": None, "cumulative": []}


def estimated_cell(inputs: CellInputs, fit: RmaFit, cis: tuple, cumulative: list[dict], diagnostics: dict,
                   config: Config) -> dict:
    """A pooled cell (``cis``: the Q-profile tau2 and I2 intervals; ``diagnostics``: from ``cell_diagnostics``),
    or a ``failed`` one when the main model did not converge."""
    if not fit.converged:
        return {**too_few_cell(inputs, config.model.level), "status": "failed",
                "message": fit.message or "the model did not converge"}
    return {
        **cell_header(inputs), "status": "ok", "message": fit.message,
        "main": model_block(fit, config, *cis),
        "studies": _studies(inputs, fit, config.model.level),
        "subgroups": {var: _subgroup(inputs, var, config) for var in inputs.plan.subgroups},
        "cumulative": cumulative,
        **diagnostics,
    }


def cell_diagnostics(yi: np.ndarray, vi: np.ndarray, trials: list[str], config: Config) -> dict:
    """Leave-one-out, influence and outliers (``influence``) and small-study tests (``bias``) of the main model.

    Takes plain values (not CellInputs) so that it can run in a worker process.
    """
    from metapsych.analysis.diagnostics import diagnostics_payload

    model = config.model
    try:
        with warnings.catch_warnings():  # numerical warnings of optimisers would only clutter CI logs
            warnings.simplefilter("ignore", RuntimeWarning)
            payload = diagnostics_payload(yi, vi, trials, None, estimator=model.estimator, knha=model.knha,
                                          level=model.level, min_k_bias=config.bias_min_studies)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        note = f"diagnostics could not be computed: {exc}"
        return {"influence": {"influence_note": note}, "bias": {"bias_note": note}}
    influence_keys = ("leave_one_out", "influence", "outliers", "baujat", "influence_note")
    influence = {key: payload.pop(key) for key in influence_keys if key in payload}
    return {"influence": influence, "bias": payload}


# Modules the diagnostics, sensitivity, moderator and network tasks import lazily (see ``preload_diagnostics``).
DIAGNOSTICS_MODULES = ("metapsych.analysis.diagnostics", "metapsych.analysis.sensitivity", "metapsych.stats.bias",
                       "metapsych.stats.selection", "metapsych.stats.multilevel", "metapsych.stats.robust",
                       "metapsych.stats.influence", "metapsych.stats.heterogeneity", "metapsych.stats.aggregate",
                       "metapsych.effects.nnt", "metapsych.stats.rma", "metapsych.stats.network")


def preload_diagnostics() -> None:
    """Import what ``cell_diagnostics`` and ``sensitivity_rows`` need, once, in this process: worker
    processes forked afterwards inherit the modules instead of importing them each."""
    import importlib

    for name in DIAGNOSTICS_MODULES:
        importlib.import_module(name)


# The sensitivity table is computed in these parts (contiguous in ROWS order), as separate tasks: the
# three-level models of a large cell cost as much as all its other rows together.
SENSITIVITY_PARTS: tuple[tuple[str, ...], ...] = (
    ("overall", "combined", "lowest", "highest", "outliers_removed", "influence_removed", "low_rob"),
    ("three_level",), ("three_level_che",))


def sensitivity_rows(effects: dict[str, list], config: Config, models: tuple[str, ...]) -> list[dict] | str:
    """Rows ``models`` of the cell's sensitivity table, from its effect-level rows (before dependency
    handling), or why they could not be computed. Plain values in and out, so it can run in a worker."""
    from metapsych.analysis.sensitivity import sensitivity_table

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return sensitivity_table(effects["yi"], effects["vi"], effects["trial"], effects["rob_low"],
                                     estimator=config.model.estimator, test=test_name(config),
                                     level=config.model.level, cer=config.effect.cer, rho=config.dependency.rho,
                                     models=models)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        return str(exc)


def sensitivity_block(parts: list[list[dict] | str], n_effects: int) -> dict:
    """The cell's ``sensitivity`` table from its parts (``sensitivity_rows`` of SENSITIVITY_PARTS, in order);
    if a part failed, the table is one row saying why."""
    for part in parts:
        if isinstance(part, str):
            return {"sensitivity": [{"model": "overall", "k": n_effects,
                                     "message": f"sensitivity analyses could not be computed: {part}"}]}
    return {"sensitivity": [row for part in parts for row in part]}


def cell_sensitivity(effects: dict[str, list], config: Config) -> dict:
    """The cell's ``sensitivity`` table, computed part by part in this process."""
    if not config.sensitivity:
        return {"sensitivity": []}
    parts = [sensitivity_rows(effects, config, models) for models in SENSITIVITY_PARTS]
    return sensitivity_block(parts, len(effects["yi"]))


def _studies(inputs: CellInputs, fit: RmaFit | None, level: float) -> list[dict]:
    from metapsych.stats import distributions as dist

    z = dist.norm_crit(dist.alpha_from_level(level))  # scipy.stats is not imported for this (a second)
    weights = fit.weights if fit is not None else [None] * inputs.k
    out = []
    for trial, yi, vi, info, w in zip(inputs.trials, inputs.yi, inputs.vi, inputs.info, weights):
        se = float(np.sqrt(vi))
        out.append({"trial": trial, "yi": finite_or_none(yi), "vi": finite_or_none(vi), "se": se,
                    "ci_lower": finite_or_none(yi - z * se), "ci_upper": finite_or_none(yi + z * se), "weight": finite_or_none(w),
                    **{key: info.get(key) for key in ("study", "n_arm1", "n_arm2", "rob", "year", "format",
                                                      "comparator", "formula")}})
    return out


def _subgroup(inputs: CellInputs, variable: str, config: Config) -> dict:
    """Separate random-effects fit per level, the Q-between test, and the common-tau2 mixed-effects QM."""
    from metapsych.stats.subgroup import subgroup_analysis

    key = SUBGROUP_KEYS[variable]
    labels = [info.get(key) for info in inputs.info]
    keep = np.array([label is not None for label in labels])
    present = [str(label) for label in labels if label is not None]
    if keep.sum() <= len(set(present)):
        return {"levels": {}, "test": None, "test_common_tau2": None,
                "message": "too few trials with a known value for a subgroup analysis"}
    result = subgroup_analysis(inputs.yi[keep], inputs.vi[keep], present,
                               estimator=config.model.estimator, test=test_name(config), level=config.model.level)
    between, common = result.between, result.common
    return {
        "levels": {level: model_block(fit, config) for level, fit in result.fits.items()},
        "test": {"Q_between": finite_or_none(between.Q_between), "df": between.df, "p_value": finite_or_none(between.p_value),
                 "method": between.method, "message": between.message},
        "test_common_tau2": None if common is None else {
            "QM": finite_or_none(common.QM), "df": common.df, "df2": finite_or_none(common.df2), "p_value": finite_or_none(common.p_value),
            "method": common.method, "message": common.message},
    }


def cumulative_prefixes(inputs: CellInputs) -> list[np.ndarray]:
    """Index sets of the cumulative meta-analysis (metafor cumul(order=year)): by year, ties by trial id."""
    order = sorted(range(inputs.k), key=lambda i: (_year(inputs.info[i]), inputs.trials[i]))
    return [np.array(order[:n]) for n in range(1, len(order) + 1)]


def cumulative_rows(inputs: CellInputs, fits: list[RmaFit]) -> list[dict]:
    """The cumulative block from the fits of ``cumulative_prefixes`` (in the same order)."""
    out = []
    for idx, f in zip(cumulative_prefixes(inputs), fits):
        i = int(idx[-1])
        lower, upper = interval(f.ci_lower[0], f.ci_upper[0])
        out.append({"trial": inputs.trials[i], "study": inputs.info[i].get("study"),
                    "year": inputs.info[i].get("year"), "k": int(idx.size), "estimate": finite_or_none(f.beta[0]),
                    "ci_lower": lower, "ci_upper": upper})
    return out


def _year(info: dict) -> float:
    """Sort key of the cumulative order: the publication year, trials without one last (as R's order)."""
    year = info.get("year")
    return float(year) if isinstance(year, (int, float)) else float("inf")
