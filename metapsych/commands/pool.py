"""``metapsych pool``: pool precomputed effect sizes as metafor's rma() does, overall or per subgroup.

Prints the JSON contract of DESIGN.md section 5 with ``--json`` (numbers that cannot be computed are
``null`` with a ``message`` saying why, never NaN), otherwise a table in the spirit of metafor's
``print.rma``. Subgroups (``--by``) are fitted in one vectorised batch.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
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
) -> int:
    """Read ``file``, fit the model (per ``by`` group when given), print JSON or a table; return 0."""
    method = _check_options(estimator, level)
    from metapsych.data.effect_table import read_effect_table

    table = read_effect_table(Path(file))
    test = "knha" if knha else "z"
    if by is None:
        payload = pooled_payload(table.yi, table.vi, method, test, level, table.study)
        if diagnostics:
            payload.update(_diagnostics(table, method, knha, level))
    else:
        if diagnostics:
            raise InputError("--diagnostics cannot be combined with --by; run it per subgroup")
        payload = subgroup_payload(table, by, method, test, level)
    if as_json:
        many = len(payload.get("subgroups", ())) > 50  # the C encoder (no indent) keeps big grids fast
        sys.stdout.write(json.dumps(payload, indent=None if many else 2, allow_nan=False) + "\n")
    else:
        render(payload, title=str(file))
    return 0


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


def methods_block(method: str, test: str, level: float, k: int | None = None) -> dict[str, Any]:
    """Every method choice behind the numbers, named."""
    df = "k - 1" if k is None else str(k - 1)
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
        "tau2_ci": "Q-profile (metafor confint)" if re else "none (tau2 = 0 by assumption)",
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
    """Contract keys from an RmaFit-like object and a Tau2Interval-like object (or None), nulls explained."""
    k = int(res.k)
    messages: list[str] = []
    out: dict[str, Any] = {
        "k": k, "estimator": method, "knha": test == "knha",
        "estimate": number(res.estimate), "se": number(res.se[0]),
        "ci_lower": number(res.ci_lower[0]), "ci_upper": number(res.ci_upper[0]),
        "statistic": number(res.statistic[0]), "p_value": number(res.p_value[0]),
        "df": number(res.df) if res.test != "z" else None,
        "tau2": number(res.tau2), "tau2_se": number(res.tau2_se),
        "tau2_ci": _pair(ci, "tau2"), "tau": number(res.tau),
        "I2": number(res.I2), "I2_ci": _pair(ci, "I2"), "H2": number(res.H2), "H2_ci": _pair(ci, "H2"),
        "Q": number(res.Q), "Q_df": int(res.Q_df), "Q_p": number(res.Q_p),
        "pi_lower": number(res.pi_lower), "pi_upper": number(res.pi_upper),
    }
    if k == 1:
        for key in ("tau2", "tau2_se", "tau2_ci", "tau", "I2", "I2_ci", "H2", "H2_ci", "Q", "Q_p",
                    "pi_lower", "pi_upper"):
            out[key] = None
        messages.append("heterogeneity is not estimable from a single study; estimate and CI are that study's")
    if res.test != test:
        messages.append("z test used because k = 1 (as metafor)")
    if method == "EE":
        messages.append("common-effect model: tau2 is 0 by assumption, so it has no CI and there is no "
                        "prediction interval")
    elif ci is not None and ci.message and k > 1:
        messages.append(ci.message)
    if res.test != "z" and float(res.s2w) == 0.0:
        messages.append("the effects are identical: the Hartung-Knapp standard error is 0 and the t statistic "
                        "is infinite (reported as null; p-value 0 as metafor)")
    if res.message and k > 1:
        messages.append(res.message)
    out["methods"] = methods_block(method, res.test, level, k)
    out["message"] = "; ".join(messages) if messages else None
    return out


def _pair(ci: Any, name: str) -> list[float | None] | None:
    if ci is None:
        return None
    lo, hi = number(getattr(ci, f"{name}_lower")), number(getattr(ci, f"{name}_upper"))
    return None if lo is None and hi is None else [lo, hi]


def subgroup_payload(table: EffectTable, by: str, method: str, test: str, level: float) -> dict[str, Any]:
    """``{"subgroups": {...}, "test": {...}, "test_common_tau2": {...}, "methods": {...}}`` for ``--by``."""
    import numpy as np

    from metapsych.stats.subgroup import between_test, subgroup_analysis

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
    batch = result.batch
    intervals = _BatchIntervals(batch)
    studies: dict[str, list[str]] = {name: [] for name in result.levels}
    for study, label in zip(table.study, labels):
        studies[label].append(study)
    subgroups: dict[str, Any] = {}
    for i, name in enumerate(result.levels):
        fitted = batch[i]
        block = model_payload(fitted, intervals.at(i), method, test, level)
        block["weights"] = [number(w) for w in fitted.weights]
        block["study"] = studies[name]
        subgroups[name] = block
    between = result.between if len(result.levels) > 1 else between_test([], [])
    common = result.common
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


class _BatchIntervals:
    """The Q-profile intervals of a BatchFit, handed out one analysis at a time like a Tau2Interval."""

    def __init__(self, batch: Any) -> None:
        import numpy as np

        self.batch = batch
        self.tau2 = (batch.tau2_ci_lower, batch.tau2_ci_upper)
        self.tau = (np.sqrt(batch.tau2_ci_lower), np.sqrt(batch.tau2_ci_upper))
        self.I2 = batch.I2_ci
        self.H2 = batch.H2_ci

    def at(self, i: int) -> SimpleNamespace:
        """Tau2Interval-like view of analysis i."""
        message = None
        if self.batch.ci_null[i]:
            message = "Q-profile interval for tau^2 is empty (Q(0) below the lower quantile); reported as [0, 0]"
        elif self.batch.ub_at_limit[i]:
            message = "upper tau^2 bound reached the search limit; the true bound is larger"
        values = {f"{name}_{side}": getattr(self, name)[j][i]
                  for name in ("tau2", "tau", "I2", "H2") for j, side in enumerate(("lower", "upper"))}
        return SimpleNamespace(**values, ci_null=bool(self.batch.ci_null[i]), message=message)


def _diagnostics(table: EffectTable, method: str, knha: bool, level: float) -> dict[str, Any]:
    """Keys added by ``--diagnostics`` (leave-one-out, influence, bias, dependence), from analysis.diagnostics."""
    try:
        from metapsych.analysis.diagnostics import diagnostics_payload
    except ModuleNotFoundError as exc:
        if exc.name != "metapsych.analysis.diagnostics":
            raise
        raise AnalysisError("--diagnostics is not available in this installation") from None

    return diagnostics_payload(table.yi, table.vi, table.study, table.column("cluster"), estimator=method,
                               knha=knha, level=level)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def _fmt_p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<.0001" if value < 1e-4 else f"{value:.4f}"


def _interval(pair: list[float | None] | None, digits: int = 4) -> str:
    return "-" if not pair else f"[{_fmt(pair[0], digits)}, {_fmt(pair[1], digits)}]"


def _model_lines(m: dict[str, Any]) -> list[str]:
    """print.rma-style lines for one model payload."""
    stat = "t" if m["df"] is not None else "z"
    df = f"(df = {m['df']:g})" if m["df"] is not None else ""
    lines = [
        f"k = {m['k']}; estimator: {m['methods']['estimator_name']} ({m['estimator']})",
        "",
        f"tau^2 (estimated amount of total heterogeneity): {_fmt(m['tau2'])} "
        f"(SE = {_fmt(m['tau2_se'])}), 95% CI {_interval(m['tau2_ci'])}".replace("95%", f"{m['methods']['level']:.0%}"),
        f"tau (square root of estimated tau^2 value):      {_fmt(m['tau'])}",
        f"I^2 (total heterogeneity / total variability):   {_fmt(m['I2'], 2)}% {_interval(m['I2_ci'], 2)}",
        f"H^2 (total variability / sampling variability):  {_fmt(m['H2'], 2)} {_interval(m['H2_ci'], 2)}",
        "",
        f"Test for heterogeneity: Q(df = {m['Q_df']}) = {_fmt(m['Q'])}, p-val = {_fmt_p(m['Q_p'])}",
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
        console.print("\n".join(_model_lines(m)), highlight=False)
        stat = "tval" if m["df"] is not None else "zval"
        table = Table(show_edge=False, header_style="bold")
        for column in ("estimate", "se", stat, "df", "pval", "ci.lb", "ci.ub", "pi.lb", "pi.ub"):
            table.add_column(column, justify="right")
        table.add_row(_fmt(m["estimate"]), _fmt(m["se"]), _fmt(m["statistic"], 2),
                      "-" if m["df"] is None else f"{m['df']:g}", _fmt_p(m["p_value"]), _fmt(m["ci_lower"]),
                      _fmt(m["ci_upper"]), _fmt(m["pi_lower"]), _fmt(m["pi_upper"]))
        console.print(table)
        if m.get("message"):
            console.print(f"note: {m['message']}", highlight=False)
        console.print("")
    if "subgroups" in payload:
        t = payload["test"]
        console.print(f"Test for subgroup differences (separate tau^2): Q_between(df = {t['df']}) = "
                      f"{_fmt(t['Q_between'])}, p-val = {_fmt_p(t['p_value'])}", highlight=False)
        c = payload.get("test_common_tau2")
        if c:
            df = f"df = {c['df']}" + (f", {c['df2']:g}" if c["df2"] is not None else "")
            label = "F" if c["df2"] is not None else "QM"
            console.print(f"Moderator test with common tau^2 (mixed-effects): {label}({df}) = {_fmt(c['QM'])}, "
                          f"p-val = {_fmt_p(c['p_value'])}", highlight=False)
    methods = payload["methods"]
    console.print(f"Methods: {methods['model']} model, tau^2 estimator {methods['estimator']}; "
                  f"{methods['test']}; tau^2 CI: {methods['tau2_ci']}; I^2: {methods['I2']}; "
                  f"prediction interval: {methods['prediction_interval']}.", highlight=False)
