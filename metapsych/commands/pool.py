"""``metapsych pool``: pool precomputed effect sizes as metafor's rma() does, overall or per subgroup.

Prints the JSON contract of DESIGN.md section 5 with ``--json`` (numbers that cannot be computed are
``null`` with a ``message`` saying why, never NaN), otherwise a table in the spirit of metafor's
``print.rma``. Subgroups (``--by``) are fitted in one vectorised batch.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metapsych.errors import AnalysisError, DataError, InputError, Problem

if TYPE_CHECKING:
    from metapsych.data.effect_table import EffectTable

ESTIMATOR_NAMES = {
    "EE": "common effect (inverse variance)",
    "DL": "DerSimonian-Laird",
    "HE": "Hedges (Hunter-Schmidt variance component)",
    "HS": "Hunter-Schmidt",
    "HSk": "Hunter-Schmidt with small-sample correction",
    "SJ": "Sidik-Jonkman",
    "ML": "maximum likelihood",
    "REML": "restricted maximum likelihood",
    "EB": "empirical Bayes",
    "PM": "Paule-Mandel",
    "PMM": "median-unbiased Paule-Mandel",
    "GENQ": "generalised Q (weights 1/vi)",
}


def run(
    file: Path,
    estimator: str = "REML",
    knha: bool = False,
    by: str | None = None,
    level: float = 0.95,
    as_json: bool = False,
    diagnostics: bool = False,
    mods: str | None = None,
    permutations: int = 0,
    seed: int = 0,
) -> int:
    """Read ``file``, fit the model (per ``by`` group, or with moderators, when given), print JSON or a table;
    return 0."""
    method = _check_options(estimator, level)
    from metapsych.commands import metareg
    from metapsych.data.effect_table import read_effect_table

    terms = None if mods is None else metareg.parse_mods(mods)
    if terms is not None:
        metareg.check_options(by, diagnostics, permutations)
    elif permutations:
        raise InputError("--permutations needs --mods (it tests the moderators of a meta-regression)")
    table = read_effect_table(Path(file))
    if by is not None and diagnostics:
        raise InputError("--diagnostics cannot be combined with --by; run it per subgroup")
    test = "knha" if knha else "z"
    try:
        if terms is not None:
            payload = metareg.metareg_payload(table, terms, method, test, level, permutations, seed)
        else:
            payload = _payload(table, by, method, test, level, diagnostics)
    except (OverflowError, ZeroDivisionError, FloatingPointError):
        raise AnalysisError(f"{file}: the model cannot be fitted: effects times weights exceed the range of "
                            "floating-point numbers (expected effects and variances of realistic size)") from None
    if as_json:
        many = len(payload.get("subgroups", ())) > 50  # the C encoder (no indent) keeps big grids fast
        sys.stdout.write(json.dumps(payload, indent=None if many else 2, allow_nan=False) + "\n")
    elif terms is not None:
        metareg.render(payload, title=str(file))
    else:
        render(payload, title=str(file))
    return 0


def _payload(table: EffectTable, by: str | None, method: str, test: str, level: float,
             diagnostics: bool) -> dict[str, Any]:
    if by is not None:
        return subgroup_payload(table, by, method, test, level)
    payload = pooled_payload(table.yi, table.vi, method, test, level, table.study)
    if diagnostics:
        payload.update(_diagnostics(table, method, test == "knha", level))
    return payload


def _check_options(estimator: str, level: float) -> str:
    from metapsych.stats.tau2 import canonical_estimator

    try:
        method = canonical_estimator(estimator)
    except ValueError:
        raise InputError(f"--estimator: unknown estimator '{estimator}' "
                         f"(expected one of {', '.join(ESTIMATOR_NAMES)})") from None
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise InputError(f"--level: {level} is outside (0, 1) (expected e.g. 0.95)")
    return method


def number(value: Any) -> float | None:
    """A finite float, or None (JSON null) for NaN, infinities and None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@functools.lru_cache(maxsize=256)
def methods_block(method: str, test: str, level: float, residual_df: int | None = None) -> dict[str, Any]:
    """Every method choice behind the numbers, named (cached: treat the result as read-only); ``residual_df``
    (k - 1, or k - p with moderators) is written into the t-distribution's wording when given."""
    df = "k - 1" if residual_df is None else str(residual_df)
    if test == "knha":
        inference = f"Hartung-Knapp-Sidik-Jonkman (knha): t distribution with {df} df, se scaled by s2w"
        pi = f"metafor predict(): estimate +/- t({df}) * sqrt(se^2 + tau2)"
    else:
        inference = "Wald-type z test"
        pi = "metafor predict(): estimate +/- z * sqrt(se^2 + tau2)"
    re = method != "EE"
    return {
        "estimator": method,
        "estimator_name": ESTIMATOR_NAMES[method],
        "model": "random effects" if re else "common effect",
        "test": inference,
        "level": level,
        "tau2_ci": ("Q-profile (metafor confint for the other estimators; for GENQ metafor's confint uses the "
                    "generalised Q-statistic method of Jackson 2013 instead, which metapsych does not implement)"
                    if method == "GENQ" else "Q-profile (metafor confint)") if re else "none (tau2 = 0 by assumption)",
        "I2": "metafor: 100 * tau2 / (tau2 + vt), vt = Higgins-Thompson typical within-study variance" if re
        else "metafor common-effect: 100 * max(0, (Q - df) / Q)",
        "H2": "tau2 / vt + 1" if re else "Q / df",
        "prediction_interval": pi if re else "none for a common-effect model",
        "convergence": "Fisher scoring threshold 1e-10 (ML, REML, EB); root tolerance 1e-12 (PM, Q-profile)",
    }


def pooled_payload(yi: list[float], vi: list[float], method: str, test: str, level: float,
                   study: list[str] | None = None) -> dict[str, Any]:
    """The JSON contract of one pooled analysis (fit plus Q-profile CIs)."""
    import numpy as np

    from metapsych.stats.heterogeneity import confint_tau2
    from metapsych.stats.rma import fit

    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    res = fit(y, v, estimator=method, test=test, level=level)
    if not res.converged:
        raise AnalysisError(f"the {method} estimator did not converge: {res.message}; try --estimator DL or PM")
    ci = confint_tau2(y, v, res)
    payload = model_payload(res, ci, method, test, level)
    payload["weights"] = [number(w) for w in res.weights]
    if study is not None:
        payload["study"] = list(study)
    return payload


def model_payload(res: Any, ci: Any, method: str, test: str, level: float) -> dict[str, Any]:
    """Contract keys from an RmaFit and a Tau2Interval (or None), with nulls explained in ``message``."""
    values = {
        "k": int(res.k), "estimate": res.estimate, "se": res.se[0], "ci_lower": res.ci_lower[0],
        "ci_upper": res.ci_upper[0], "statistic": res.statistic[0], "p_value": res.p_value[0], "df": res.df,
        "tau2": res.tau2, "tau2_se": res.tau2_se, "tau": res.tau, "I2": res.I2, "H2": res.H2, "Q": res.Q,
        "Q_df": int(res.Q_df), "Q_p": res.Q_p, "pi_lower": res.pi_lower, "pi_upper": res.pi_upper,
        "test": res.test, "s2w": res.s2w, "message": res.message,
    }
    for name in ("tau2", "tau", "I2", "H2"):
        values[f"{name}_lower"] = None if ci is None else getattr(ci, f"{name}_lower")
        values[f"{name}_upper"] = None if ci is None else getattr(ci, f"{name}_upper")
    values["ci_message"] = None if ci is None else ci.message
    return contract(values, method, test, level)


NOT_ESTIMABLE_K1 = ("tau2", "tau2_se", "tau2_ci", "tau", "I2", "I2_ci", "H2", "H2_ci", "Q", "Q_p", "pi_lower",
                    "pi_upper")


def contract(values: dict[str, Any], method: str, test: str, level: float) -> dict[str, Any]:
    """The contract dict from plain values (numbers may be NaN/inf: they become null, and ``message`` says why)."""
    k = values["k"]
    used = values["test"]
    out: dict[str, Any] = {"k": k, "estimator": method, "knha": test == "knha"}
    for key in ("estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value"):
        out[key] = number(values[key])
    out["df"] = number(values["df"]) if used != "z" else None
    out["tau2"], out["tau2_se"] = number(values["tau2"]), number(values["tau2_se"])
    out["tau2_ci"] = _pair(values, "tau2")
    out["tau"] = number(values["tau"])
    out["I2"], out["I2_ci"] = number(values["I2"]), _pair(values, "I2")
    out["H2"], out["H2_ci"] = number(values["H2"]), _pair(values, "H2")
    out["Q"], out["Q_df"], out["Q_p"] = number(values["Q"]), values["Q_df"], number(values["Q_p"])
    out["pi_lower"], out["pi_upper"] = number(values["pi_lower"]), number(values["pi_upper"])
    messages: list[str] = []
    if k == 1:
        for key in NOT_ESTIMABLE_K1:
            out[key] = None
        messages.append("heterogeneity is not estimable from a single study; estimate and CI are that study's")
    if used != test:
        messages.append("z test used because k = 1 (as metafor)")
    if method == "EE":
        messages.append("common-effect model: tau2 is 0 by assumption, so it has no CI and there is no "
                        "prediction interval")
    elif values["ci_message"] and k > 1:
        messages.append(values["ci_message"])
    if used != "z" and values["s2w"] == 0.0:
        messages.append("the effects are identical: the Hartung-Knapp standard error is 0 and the t statistic "
                        "is infinite (reported as null; p-value 0 as metafor)")
    if values["message"] and k > 1:
        messages.append(values["message"])
    out["methods"] = methods_block(method, used, level, k - 1)
    out["message"] = "; ".join(messages) if messages else None
    return out


def _pair(values: dict[str, Any], name: str) -> list[float | None] | None:
    return pair(values[f"{name}_lower"], values[f"{name}_upper"])


def pair(lower: float | None, upper: float | None) -> list[float | None] | None:
    """An interval as JSON: [lower, upper] with nulls for what cannot be computed, or null for neither."""
    lo, hi = number(lower), number(upper)
    return None if lo is None and hi is None else [lo, hi]


def subgroup_payload(table: EffectTable, by: str, method: str, test: str, level: float) -> dict[str, Any]:
    """``{"subgroups": {...}, "test": {...}, "test_common_tau2": {...}, "methods": {...}}`` for ``--by``."""
    import numpy as np

    from metapsych.stats.subgroup import subgroup_analysis

    labels = table.column(by)
    if labels is None:
        raise DataError(Problem(table.file, 1, by, "no such column for --by",
                                f"one of: {', '.join(table.columns)}"))
    empty = [Problem(table.file, line, by, "empty subgroup value", "a subgroup label")
             for line, label in zip(table.lines, labels) if not label]
    if empty:
        raise DataError(empty)
    y, v = np.asarray(table.yi), np.asarray(table.vi)
    result = subgroup_analysis(y, v, labels, estimator=method, test=test, level=level)
    studies: dict[str, list[str]] = {name: [] for name in result.levels}
    for study, label in zip(table.study, labels):
        studies[label].append(study)
    subgroups: dict[str, Any] = {}
    for name, values, weights in zip(result.levels, _batch_values(result.batch), _batch_weights(result.batch)):
        block = contract(values, method, test, level)
        del block["methods"]  # the top-level "methods" covers every subgroup
        block["weights"] = weights
        block["study"] = studies[name]
        subgroups[name] = block
    between, common = result.between, result.common
    return {
        "subgroups": subgroups,
        "test": {"Q_between": number(between.Q_between), "df": between.df, "p_value": number(between.p_value),
                 "method": "separate tau2 per subgroup; Q of a common-effect model on the subgroup estimates "
                           "(Wald-type standard errors), chi-square with groups - 1 df",
                 "message": between.message},
        "test_common_tau2": None if common is None else {
            "QM": number(common.QM), "df": common.df, "df2": number(common.df2), "p_value": number(common.p_value),
            "tau2": number(common.tau2), "method": common.method, "message": common.message},
        "methods": methods_block(method, test, level),
    }


def _batch_values(batch: Any) -> list[dict[str, Any]]:
    """Plain per-analysis values of a BatchFit (as ``contract`` takes them), built column-wise."""
    import numpy as np

    lists = {name: getattr(batch, name).tolist() for name in (
        "k", "estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value", "df", "tau2", "tau2_se", "I2", "H2",
        "Q", "Q_p", "pi_lower", "pi_upper", "s2w")}
    lists["tau"] = np.sqrt(batch.tau2).tolist()
    lists["Q_df"] = (batch.k - 1).tolist()
    lo, hi = batch.tau2_ci_lower, batch.tau2_ci_upper
    for name, (a, b) in {"tau2": (lo, hi), "tau": (np.sqrt(lo), np.sqrt(hi)), "I2": batch.I2_ci,
                         "H2": batch.H2_ci}.items():
        lists[f"{name}_lower"], lists[f"{name}_upper"] = a.tolist(), b.tolist()
    tests = np.where(batch.k == 1, "z", batch.test).tolist()
    notes = np.where(batch.ci_null, "Q-profile interval for tau^2 is empty (Q(0) below the lower quantile); "
                     "reported as [0, 0]", np.where(batch.ub_at_limit, "upper tau^2 bound reached the search limit; "
                                                    "the true bound is larger", "")).tolist()
    names = list(lists)
    out = []
    for i, row in enumerate(zip(*(lists[n] for n in names))):
        values = dict(zip(names, row))
        values.update(test=tests[i], message=batch.messages[i], ci_message=notes[i] or None)
        out.append(values)
    return out


def _batch_weights(batch: Any) -> list[list[float]]:
    """Per-analysis study weights (percent), in each analysis's input order (null where the fit failed)."""
    order = [number(w) for w in batch.weights[batch.study_order].tolist()]
    bounds = (batch.starts.tolist() + [len(order)])
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _diagnostics(table: EffectTable, method: str, knha: bool, level: float) -> dict[str, Any]:
    """Keys added by ``--diagnostics`` (leave-one-out, influence, bias, dependence), from analysis.diagnostics."""
    try:
        from metapsych.analysis.diagnostics import diagnostics_payload
    except ModuleNotFoundError as exc:
        if exc.name != "metapsych.analysis.diagnostics":
            raise
        raise AnalysisError("--diagnostics is not available in this installation") from None

    cluster = table.column("cluster")
    if cluster is not None:
        _check_cluster_labels(table, cluster)
    return diagnostics_payload(table.yi, table.vi, table.study, cluster, estimator=method, knha=knha, level=level)


def _check_cluster_labels(table: EffectTable, cluster: list[str]) -> None:
    """Every row needs a cluster label (a blank one would pool unrelated effects); DataError naming the rows."""
    blank = [Problem(table.file, line, "cluster", "no cluster label", "a label for every row, or no cluster column")
             for line, label in zip(table.lines, cluster) if not label]
    if blank:
        raise DataError(blank)


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for the text output: fixed decimals, scientific below 10^-digits, '-' for null."""
    if value is None:
        return "-"
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def fmt_p(value: float | None) -> str:
    """A p-value as metafor prints it ('<.0001' below 1e-4)."""
    if value is None:
        return "-"
    return "<.0001" if value < 1e-4 else f"{value:.4f}"


def p_val(value: float | None) -> str:
    """'p-val = 0.0042' or 'p-val < .0001', as metafor's print methods write a test's p-value."""
    text = fmt_p(value)
    return f"p-val {text[0]} {text[1:]}" if text.startswith("<") else f"p-val = {text}"


def interval(pair: list[float | None] | None, digits: int = 4) -> str:
    """'[lower, upper]' or '-'."""
    return "-" if not pair else f"[{fmt(pair[0], digits)}, {fmt(pair[1], digits)}]"


def _model_lines(m: dict[str, Any], methods: dict[str, Any]) -> list[str]:
    """print.rma-style lines for one model payload."""
    level = f"{methods['level']:.0%}"
    lines = [
        f"k = {m['k']}; estimator: {methods['estimator_name']} ({m['estimator']})",
        "",
        f"tau^2 (estimated amount of total heterogeneity): {fmt(m['tau2'])} "
        f"(SE = {fmt(m['tau2_se'])}), {level} CI {interval(m['tau2_ci'])}",
        f"tau (square root of estimated tau^2 value):      {fmt(m['tau'])}",
        f"I^2 (total heterogeneity / total variability):   {fmt(m['I2'], 2)}% {interval(m['I2_ci'], 2)}",
        f"H^2 (total variability / sampling variability):  {fmt(m['H2'], 2)} {interval(m['H2_ci'], 2)}",
        "",
        f"Test for heterogeneity: Q(df = {m['Q_df']}) = {fmt(m['Q'])}, {p_val(m['Q_p'])}",
        "",
    ]
    return lines


def render(payload: dict[str, Any], title: str) -> None:
    """Print the payload as rich tables on stdout (the non-JSON output of ``pool``)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    models = payload["subgroups"] if "subgroups" in payload else {"": payload}
    for name, m in models.items():
        kind = "Common-effect" if m["estimator"] == "EE" else "Random-effects"
        heading = f"{kind} model: {title}" + (f" - subgroup {name}" if name else "")
        console.print(f"[bold]{heading}[/bold]", highlight=False)
        console.print("\n".join(_model_lines(m, payload["methods"])), highlight=False)
        stat = "tval" if m["df"] is not None else "zval"
        table = Table(show_edge=False, header_style="bold")
        for column in ("estimate", "se", stat, "df", "pval", "ci.lb", "ci.ub", "pi.lb", "pi.ub"):
            table.add_column(column, justify="right")
        table.add_row(fmt(m["estimate"]), fmt(m["se"]), fmt(m["statistic"], 2),
                      "-" if m["df"] is None else f"{m['df']:g}", fmt_p(m["p_value"]), fmt(m["ci_lower"]),
                      fmt(m["ci_upper"]), fmt(m["pi_lower"]), fmt(m["pi_upper"]))
        console.print(table)
        if m.get("message"):
            console.print(f"note: {m['message']}", highlight=False)
        console.print("")
    if "subgroups" in payload:
        t = payload["test"]
        console.print(f"Test for subgroup differences (separate tau^2): Q_between(df = {t['df']}) = "
                      f"{fmt(t['Q_between'])}, {p_val(t['p_value'])}", highlight=False)
        c = payload.get("test_common_tau2")
        if c:
            df = f"df = {c['df']}" + (f", {c['df2']:g}" if c["df2"] is not None else "")
            label = "F" if c["df2"] is not None else "QM"
            console.print(f"Moderator test with common tau^2 (mixed-effects): {label}({df}) = {fmt(c['QM'])}, "
                          f"{p_val(c['p_value'])}", highlight=False)
    methods = payload["methods"]
    console.print(f"Methods: {methods['model']} model, tau^2 estimator {methods['estimator']}; "
                  f"{methods['test']}; tau^2 CI: {methods['tau2_ci']}; I^2: {methods['I2']}; "
                  f"prediction interval: {methods['prediction_interval']}.", highlight=False)
