"""Trial-level moderators (dose, year, risk of bias, sample make-up): a meta-regression per condition.

For each condition, the effects of every therapy against any control at the configured time point are
reduced to one per trial (the config's dependency rule), and each moderator gets its own mixed-effects
model ``yi ~ 1 + x`` with the config's estimator and test. Risk of bias enters as an ordinal score
(low 0, some concerns 1, high 2). Trials without a value for the moderator are left out of its model.
Each condition's models are cached under the hash of its input rows and the settings, so adding a trial
refits only its own condition's moderators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from metapsych.analysis.cache import Cache, code_version, sha256_columns, sha256_json
from metapsych.analysis.config import moderator_column
from metapsych.analysis.inputs import trial_effects
from metapsych.analysis.models import test_name
from metapsych.analysis.pending import Pending, Planned
from metapsych.stats.values import finite_or_none

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.analysis.config import Config

ROB_SCORE = {"low": 0.0, "some": 1.0, "some concerns": 1.0, "high": 2.0}


def moderator_results(effects: pd.DataFrame, config: Config, cache: Cache | None = None) -> dict:
    """``{condition: {moderator: payload}}`` for every condition in the effect table (cached per condition)."""
    cache = cache or Cache(None)
    return moderator_plan(effects, config, cache).compute_here(cache)


def moderator_plan(effects: pd.DataFrame, config: Config, cache: Cache) -> Planned:
    """The conditions' moderator payloads found in the cache, and those to compute (``_condition``)."""
    keep = (effects["kind_arm2"] == "control") & (effects["time"] == config.moderators.time)
    columns = dict.fromkeys(["condition", "trial", "yi", "vi", *_moderator_columns(effects, config)])
    rows = effects.loc[keep, list(columns)]
    conditions, cached, pending = [], {}, []
    for condition, group in rows.groupby("condition", sort=True):
        group = group.sort_values("trial", kind="stable")
        key = _inputs_key(group, config)
        conditions.append(str(condition))
        payload = cache.get_json("moderators", key)
        if isinstance(payload, dict):
            cached[str(condition)] = payload
        else:
            pending.append(Pending(str(condition), "moderators", key, _condition, (group, config), len(group)))
    return Planned(conditions, cached, pending)


def _moderator_columns(effects: pd.DataFrame, config: Config) -> list[str]:
    """The configured moderators' columns that the effect table has (sorted, each once)."""
    return sorted({moderator_column(name) for name in config.moderators.variables} & set(effects.columns))


def _condition(group: pd.DataFrame, config: Config) -> dict:
    """One condition's moderator models from its rows (sorted by trial)."""
    trials = tuple(sorted(group["trial"].unique()))
    yi, vi = trial_effects(group, trials, config.dependency.method, config.dependency.rho)
    first = group.groupby("trial", sort=True).first()
    return {name: _one(name, first, trials, yi, vi, config) for name in config.moderators.variables}


def _inputs_key(group: pd.DataFrame, config: Config) -> str:
    """Hash of everything a condition's models depend on: the code, the settings, and the rows' trial,
    effect and moderator columns (exactly, in the rows' order)."""
    columns = dict.fromkeys(["trial", "yi", "vi", *_moderator_columns(group, config)])
    settings = config.model_dump(mode="json", include={"model", "dependency", "moderators"})
    return sha256_json([code_version(), settings, sha256_columns((name, group[name].to_numpy()) for name in columns)])


def _one(name: str, first: pd.DataFrame, trials: tuple[str, ...], yi: np.ndarray, vi: np.ndarray,
         config: Config) -> dict:
    from metapsych.stats.rma import fit

    column = moderator_column(name)
    if column not in first:
        return _empty(name, column, f"the data have no column '{column}'")
    x = _values(first[column])
    keep = np.isfinite(x)
    k = int(keep.sum())
    if k < config.moderators.min_studies:
        words = sum(isinstance(v, str) and not np.isfinite(n) for v, n in zip(first[column], x))
        why = f"; {words} give text, which a meta-regression cannot use (it needs numbers)" if words else ""
        return _empty(name, column, f"{k} trial(s) report it as a number{why}; at least "
                      f"{config.moderators.min_studies} needed", k)
    if np.ptp(x[keep]) == 0:
        return _empty(name, column, "the moderator does not vary between trials", k)
    X = np.column_stack([np.ones(k), x[keep]])
    try:
        f = fit(yi[keep], vi[keep], X=X, estimator=config.model.estimator, test=test_name(config),
                level=config.model.level)
    except ValueError as exc:  # a model matrix metafor would not fit either (a moderator of tiny spread)
        return _empty(name, column, str(exc), k)
    if not f.converged:
        return _empty(name, column, f.message or "the model did not converge", k)
    coefficients = {label: {"estimate": finite_or_none(f.beta[i]), "se": finite_or_none(f.se[i]),
                            "statistic": finite_or_none(f.statistic[i]), "p_value": finite_or_none(f.p_value[i]),
                            "ci_lower": finite_or_none(f.ci_lower[i]), "ci_upper": finite_or_none(f.ci_upper[i])}
                    for i, label in enumerate(("intrcpt", name))}
    qm_df = f.QM_df if np.ndim(f.QM_df) == 0 else [int(d) for d in np.ravel(f.QM_df)]
    points = [{"trial": t, "x": float(xv), "yi": float(y), "vi": float(v)}
              for t, xv, y, v, ok in zip(trials, x, yi, vi, keep) if ok]
    return {"k": k, "column": column, "coefficients": coefficients, "QM": finite_or_none(f.QM), "QM_df": qm_df,
            "QM_p": finite_or_none(f.QM_p), "R2": finite_or_none(f.R2), "tau2": finite_or_none(f.tau2), "test": f.test,
            "message": _mixed_scales(column, x[keep]), "points": points}


def _mixed_scales(column: str, x: np.ndarray) -> str | None:
    """A note on a percentage moderator with values both below and above 1: if some trials give a proportion
    (0-1, as the Metapsy databases store it) and others a percentage (1-100), 0.7 and 70 are one value on two
    scales. Percentages below 1 are possible too, so the model is fitted and the note says what to check."""
    from metapsych.data.checks import PERCENT

    if not PERCENT.match(column):
        return None
    proportions, percentages = int(np.sum((x > 0) & (x < 1))), int(np.sum(x > 1))
    if not (proportions and percentages):
        return None
    return (f"{column} is below 1 in {proportions} trial(s) and above 1 in {percentages}: if some give a proportion "
            "(0-1) and others a percentage (1-100), put every trial's value on one scale")


def _values(series: pd.Series) -> np.ndarray:
    """Numeric moderator values; risk-of-bias labels become scores, other text becomes missing."""
    import pandas as pd

    mapped = series.map(lambda v: ROB_SCORE.get(v.lower()) if isinstance(v, str) else v)
    return pd.to_numeric(mapped, errors="coerce").to_numpy(dtype=float)


def _empty(name: str, column: str, message: str, k: int = 0) -> dict:
    return {"k": k, "column": column, "coefficients": {}, "QM": None, "QM_df": None, "QM_p": None, "R2": None,
            "tau2": None, "test": None, "message": message, "points": []}
