"""The comparison table: one row per comparison (arm1 = active arm, arm2 = comparator) x outcome x time
point, with Metapsy column names (see docs/architecture.md, "The comparison table").

Which comparisons a trial makes: its ``comparisons`` list when given, otherwise every therapy arm against
every control arm. An outcome with per-arm results yields one row per comparison whose two arms both have
results; a precomputed effect yields one row for its ``arms`` pair; a statistic one row for its two arms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.data.load import LoadedTrial, Trials
    from metapsych.data.schema import Arm, Outcome, Trial
    from metapsych.data.vocabulary import Vocabulary

KIND_ARM2 = {"control": "control", "therapy": "active", "pharmacotherapy": "pharmacotherapy",
             "combined": "combined"}
DATA_COLUMNS = [
    "mean_arm1", "sd_arm1", "n_arm1", "mean_arm2", "sd_arm2", "n_arm2",
    "mean_change_arm1", "sd_change_arm1", "n_change_arm1", "mean_change_arm2", "sd_change_arm2", "n_change_arm2",
    "event_arm1", "totaln_arm1", "event_arm2", "totaln_arm2",
    "precalc_g", "precalc_g_se", "precalc_ci_lower", "precalc_ci_upper",
    "t_value", "f_value", "p_value", "stat_favours",
]
COLUMNS = [
    "study", "trial", "condition", "arm1", "arm2", "condition_arm1", "condition_arm2", "multi_arm1", "multi_arm2",
    "kind_arm2", "label_arm1", "label_arm2", "format", "format_arm2", "n_sessions_arm1", "outcome_type",
    "outcome_label",
    "instrument", "rating", "lower_is_better", "time", "time_weeks", *DATA_COLUMNS,
    "icc", "cluster_size", "icc_arm2", "cluster_size_arm2", "rand_arm1", "rand_arm2",
    "year", "country", "rob", "rob_tool", "rob_score", "citation", "outcome_index", "source_file", "source_line",
]

#: columns the effect sizes are computed from beyond the table's own (a Metapsy file may hold them)
EXTRA_EFFECT_INPUTS = ("precalc_log_rr", "precalc_log_rr_se", "icc_arm1", "cluster_size_arm1")
#: names a trial's moderators cannot take: a moderator ``precalc_log_rr`` would become an effect size
RESERVED = frozenset((*COLUMNS, *EXTRA_EFFECT_INPUTS))


def trial_comparisons(trial: Trial, vocabulary: Vocabulary) -> list[tuple[str, str]]:
    """The trial's comparisons: explicit, or every therapy arm against every control arm."""
    if trial.comparisons is not None:
        return [tuple(pair) for pair in trial.comparisons]  # type: ignore[misc]
    kinds = {arm.id: vocabulary.arm_kind(arm.approach) for arm in trial.arms}
    return [(a.id, b.id) for a in trial.arms for b in trial.arms
            if kinds[a.id] == "therapy" and kinds[b.id] == "control"]


def comparison_table(trials: Trials) -> pd.DataFrame:
    """The comparison table of all trials (columns :data:`COLUMNS`, then each trial's moderators)."""
    rows: list[dict[str, Any]] = []
    for loaded in trials:
        rows += trial_rows(loaded, trials.vocabulary)
    return table_from_rows(rows)


def table_from_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The comparison table of rows made by :func:`trial_rows` (trials in order), with its column order and
    numeric columns; callers that cache each trial's rows build the table from them without the trials."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    extra = sorted(c for c in frame.columns if c not in COLUMNS)
    frame = frame.reindex(columns=COLUMNS + extra)
    for name in DATA_COLUMNS + ["time_weeks", "n_sessions_arm1", "icc", "cluster_size", "icc_arm2",
                                "cluster_size_arm2", "rand_arm1", "rand_arm2", "rob_score"]:
        if name != "stat_favours":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def trial_rows(loaded: LoadedTrial, vocabulary: Vocabulary) -> list[dict[str, Any]]:
    """Comparison-table rows of one trial."""
    trial = loaded.trial
    arms = {arm.id: arm for arm in trial.arms}
    pairs = trial_comparisons(trial, vocabulary)
    base = _trial_columns(loaded)
    rows = []
    for index, outcome in enumerate(trial.outcomes):
        for arm1, arm2, data in _outcome_data(outcome, pairs):
            row = dict(base)
            row.update(_arm_columns(arms[arm1], arms[arm2], vocabulary))
            row.update(_outcome_columns(outcome, vocabulary))
            row.update(data)
            row["outcome_index"] = index
            row["source_line"] = loaded.outcome_lines[index]
            rows.append(row)
    return rows


def _outcome_data(outcome: Outcome, pairs: list[tuple[str, str]]) -> list[tuple[str, str, dict[str, Any]]]:
    if outcome.precomputed is not None:
        return [_precomputed_row(outcome, pairs)]
    if outcome.statistic is not None:
        return [_statistic_row(outcome, pairs)]
    return [(a, b, _results_columns(outcome, a, b)) for a, b in pairs
            if a in outcome.results and b in outcome.results]


def _precomputed_row(outcome: Outcome, pairs: list[tuple[str, str]]) -> tuple[str, str, dict[str, Any]]:
    """The precomputed g as a row of the trial's comparison: given for [control, therapy], it is turned
    round (g and its CI negated), as statistic rows are, so that it counts in the therapy's comparison."""
    pre = outcome.precomputed
    assert pre is not None
    a, b = pre.arms
    g, lower, upper = pre.g, pre.ci_lower, pre.ci_upper
    if (b, a) in pairs and (a, b) not in pairs:
        a, b = b, a
        g, lower, upper = -g, None if upper is None else -upper, None if lower is None else -lower
    data = {"outcome_type": "precalc", "precalc_g": g, "precalc_g_se": pre.se,
            "precalc_ci_lower": lower, "precalc_ci_upper": upper}
    data.update(_n_columns(outcome, a, b))
    return a, b, data


def _statistic_row(outcome: Outcome, pairs: list[tuple[str, str]]) -> tuple[str, str, dict[str, Any]]:
    stat = outcome.statistic
    assert stat is not None
    a, b = list(outcome.results)[:2]
    if (b, a) in pairs:
        a, b = b, a
    data = {"outcome_type": "statistic", "t_value": stat.t, "f_value": stat.f, "p_value": stat.p,
            "stat_favours": "arm1" if stat.favours == a else "arm2"}
    data.update(_n_columns(outcome, a, b))
    return a, b, data


def _n_columns(outcome: Outcome, a: str, b: str) -> dict[str, Any]:
    first, second = outcome.results.get(a), outcome.results.get(b)
    return {"n_arm1": first.n if first else None, "n_arm2": second.n if second else None}


def _results_columns(outcome: Outcome, a: str, b: str) -> dict[str, Any]:
    first, second = outcome.results[a], outcome.results[b]
    if first.mean is not None:
        return {"outcome_type": "msd", "mean_arm1": first.mean, "sd_arm1": first.sd, "n_arm1": first.n,
                "mean_arm2": second.mean, "sd_arm2": second.sd, "n_arm2": second.n}
    if first.change_mean is not None:
        return {"outcome_type": "change", "mean_change_arm1": first.change_mean, "sd_change_arm1": first.change_sd,
                "n_change_arm1": first.n, "mean_change_arm2": second.change_mean,
                "sd_change_arm2": second.change_sd, "n_change_arm2": second.n}
    return {"outcome_type": "binary", "event_arm1": first.events, "totaln_arm1": first.n,
            "event_arm2": second.events, "totaln_arm2": second.n}


def _trial_columns(loaded: LoadedTrial) -> dict[str, Any]:
    trial = loaded.trial
    rob = trial.risk_of_bias
    row: dict[str, Any] = {key: value for key, value in trial.moderators.items() if key not in RESERVED}
    row.update({
        "study": trial.label, "trial": trial.id, "condition": trial.condition, "year": trial.year,
        "country": trial.country, "rob": rob.overall if rob else None, "rob_tool": rob.tool if rob else None,
        "rob_score": rob.score if rob else None, "citation": trial.citation, "source_file": loaded.file,
    })
    return row


def _arm_columns(arm1: Arm, arm2: Arm, vocabulary: Vocabulary) -> dict[str, Any]:
    return {
        "arm1": arm1.id, "arm2": arm2.id, "condition_arm1": arm1.approach, "condition_arm2": arm2.approach,
        "multi_arm1": arm1.id, "multi_arm2": arm2.id, "kind_arm2": KIND_ARM2[vocabulary.arm_kind(arm2.approach)],
        "label_arm1": arm1.label, "label_arm2": arm2.label, "format": arm1.format, "format_arm2": arm2.format,
        "n_sessions_arm1": arm1.sessions,
        "icc": arm1.icc, "cluster_size": arm1.cluster_size, "icc_arm2": arm2.icc,
        "cluster_size_arm2": arm2.cluster_size, "rand_arm1": arm1.randomized, "rand_arm2": arm2.randomized,
    }


def _outcome_columns(outcome: Outcome, vocabulary: Vocabulary) -> dict[str, Any]:
    lower = outcome.lower_is_better
    if lower is None:
        lower = vocabulary.instrument_lower_is_better(outcome.instrument)
    return {"instrument": outcome.instrument, "rating": outcome.rating, "lower_is_better": lower,
            "time": outcome.timepoint.label, "time_weeks": outcome.timepoint.weeks, "outcome_label": outcome.type}
