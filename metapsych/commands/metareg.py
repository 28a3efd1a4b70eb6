"""``metapsych pool FILE.csv --mods a,b``: a mixed-effects meta-regression, as metafor's ``rma(mods = ~ a + b)``.

Moderators are columns of the effect table. A column whose every non-missing cell is a number is numeric; any
other column is categorical, with treatment coding and the first level as R sorts them as the reference, and
``factor(NAME)`` makes a numeric column categorical (coefficients are named as R names them: ``NAMElevel``).
Rows with a missing moderator are left out, as R's default ``na.action`` does, and the output names their
lines. With ``--permutations N`` the coefficients and the omnibus test also get permutation p-values
(metafor's ``permutest``: exact when there are at most N distinct permutations, else N random ones).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from metapsych.commands.pool import methods_block, number
from metapsych.errors import AnalysisError, DataError, InputError, Problem

if TYPE_CHECKING:
    from metapsych.data.effect_table import EffectTable

FACTOR = re.compile(r"^factor\((.+)\)$")


def parse_mods(text: str) -> list[str]:
    """The moderator terms of ``--mods`` (comma-separated column names, ``factor(NAME)`` allowed)."""
    terms = [term.strip() for term in text.split(",")]
    if not text.strip() or any(not term for term in terms):
        raise InputError(f"--mods: {text!r} is not a list of column names (expected e.g. 'year,factor(format)')")
    twice = sorted({term for term in terms if terms.count(term) > 1})
    if twice:
        raise InputError(f"--mods: {', '.join(twice)} given more than once")
    return terms


def moderator_values(table: EffectTable, terms: list[str]) -> dict[str, list[object]]:
    """Per term, the column's values: floats for a numeric column, text for a categorical one (None: missing)."""
    from metapsych.data.metapsy import parse_number

    problems: list[Problem] = []
    out: dict[str, list[object]] = {}
    for term in terms:
        match = FACTOR.match(term)
        column = match.group(1).strip() if match else term
        cells = table.column(column)
        if cells is None:
            problems.append(Problem(table.file, 1, column, "no such column for --mods",
                                    f"one of: {', '.join(table.columns) or 'none'}"))
            continue
        parsed = []
        for cell in cells:
            try:
                parsed.append(parse_number(cell))
            except ValueError:
                parsed.append(cell.strip())
        numeric = all(value is None or isinstance(value, float) for value in parsed)
        if match or not numeric:
            parsed = [_level(value, cell) for value, cell in zip(parsed, cells)]
        out[term] = parsed
    if problems:
        raise DataError(problems)
    if out and not any(all(values[i] is not None for values in out.values()) for i in range(len(table.yi))):
        empty = [term for term, values in out.items() if all(value is None for value in values)] or terms
        raise DataError([Problem(table.file, None, term, "no row has a value of every moderator",
                                 "values in the rows to be analysed") for term in empty])
    return out


def _level(value: object, cell: str) -> str | None:
    """A categorical value: a number as R's as.character writes a whole number (1, not 1.0), else the cell."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return cell.strip()


def metareg_payload(table: EffectTable, terms: list[str], method: str, test: str, level: float,
                    permutations: int, seed: int) -> dict[str, Any]:
    """The meta-regression as a JSON-ready dict (numbers that cannot be computed are null, never NaN)."""
    import numpy as np

    from metapsych.stats.heterogeneity import confint_tau2
    from metapsych.stats.metareg import meta_regression

    values = moderator_values(table, terms)
    try:
        model = meta_regression(np.asarray(table.yi), np.asarray(table.vi), values, estimator=method, test=test,
                                level=level)
    except ValueError as exc:
        raise AnalysisError(f"{table.file}: the meta-regression cannot be fitted: {exc}") from None
    res, rows = model.fit, model.design.rows
    if not res.converged:
        raise AnalysisError(f"the {method} estimator did not converge: {res.message}; try --estimator DL or PM")
    y, v = np.asarray(table.yi)[rows], np.asarray(table.vi)[rows]
    ci = confint_tau2(y, v, res, X=model.design.X)
    left_out = sorted(set(range(len(table.yi))) - set(rows.tolist()))
    payload: dict[str, Any] = {
        "k": int(res.k), "estimator": method, "knha": test == "knha", "mods": terms,
        "coefficients": {name: {key: number(value) for key, value in block.items()}
                         for name, block in model.coefficients().items()},
        "df": number(res.df) if res.test != "z" else None,
        "tau2": number(res.tau2), "tau2_se": number(res.tau2_se), "tau2_ci": _pair(ci.tau2_lower, ci.tau2_upper),
        "tau": number(res.tau), "I2": number(res.I2), "I2_ci": _pair(ci.I2_lower, ci.I2_upper),
        "H2": number(res.H2), "H2_ci": _pair(ci.H2_lower, ci.H2_upper), "R2": number(res.R2),
        "QE": number(res.Q), "QE_df": int(res.Q_df), "QE_p": number(res.Q_p),
        "QM": number(res.QM), "QM_df": int(res.QM_df), "QM_df2": number(res.df) if res.test != "z" else None,
        "QM_p": number(res.QM_p),
        "dropped_columns": list(model.dropped),
        "rows_left_out": [table.lines[i] for i in left_out],
        "levels": {name: list(levels) for name, levels in model.design.levels.items()},
    }
    if permutations:
        payload["permutation"] = _permutation(y, v, model.design.X, model.names, method, test, level,
                                              permutations, seed)
    # methods_block words the t distribution's df as k - 1: k - p + 1 gives the meta-regression's k - p
    common = methods_block(method, res.test, level, int(res.k) - int(res.p) + 1)
    payload["methods"] = {**{key: text for key, text in common.items() if key != "prediction_interval"},
                          "model": "mixed-effects meta-regression" if method != "EE" else "fixed-effects meta-regression",
                          "coding": "treatment coding; reference level: the first as R sorts them",
                          "tau2": "residual heterogeneity; R2 = metafor's pseudo-R^2 against the model without "
                                  "moderators (same estimator)"}
    messages = [m for m in (res.message, ci.message if method != "EE" else None) if m]
    if left_out:
        messages.append(f"{len(left_out)} row(s) with a missing moderator left out (as R's na.action)")
    payload["message"] = "; ".join(messages) or None
    return payload


def _pair(lower: float, upper: float) -> list[float | None] | None:
    lo, hi = number(lower), number(upper)
    return None if lo is None and hi is None else [lo, hi]


def _permutation(y: Any, v: Any, x: Any, names: tuple[str, ...], method: str, test: str, level: float,
                 permutations: int, seed: int) -> dict[str, Any]:
    from metapsych.stats.permutation import permutest

    try:
        result = permutest(y, v, X=x, estimator=method, test=test, level=level, iterations=permutations, seed=seed)
    except ValueError as exc:
        raise AnalysisError(f"the permutation test cannot be run: {exc}") from None
    return {"iterations": result.iterations, "exact": result.exact, "seed": result.seed,
            "p_value": {name: number(p) for name, p in zip(names, result.p_value)}, "QM_p": number(result.QM_p),
            "failed": result.failed,
            "method": "metafor permutest: exact over all distinct permutations" if result.exact else
                      "metafor permutest with random permutations drawn by numpy's seeded generator (p-values "
                      "differ from metafor's by Monte Carlo error)"}


def check_options(by: str | None, diagnostics: bool, permutations: int) -> None:
    """--mods excludes --by and --diagnostics; --permutations needs a positive count."""
    if by is not None:
        raise InputError("--mods cannot be combined with --by; add the subgroup column to --mods as a "
                         "categorical moderator instead")
    if diagnostics:
        raise InputError("--diagnostics cannot be combined with --mods (it diagnoses the model without moderators)")
    if permutations < 0:
        raise InputError(f"--permutations: {permutations} is negative (expected a count, e.g. 1000)")


def render(m: dict[str, Any], title: str) -> None:
    """Print the meta-regression as metafor's print.rma does, with the coefficient table and the methods."""
    from rich.console import Console
    from rich.table import Table

    from metapsych.commands.pool import fmt, fmt_p

    console = Console()
    console.print("\n".join(_heading_lines(m, title)), highlight=False)
    perm = m.get("permutation")
    table = Table(show_edge=False, header_style="bold")
    stat = "tval" if m["df"] is not None else "zval"
    for column in ("", "estimate", "se", stat, "df", "pval", "ci.lb", "ci.ub") + (("perm. pval",) if perm else ()):
        table.add_column(column, justify="left" if not column else "right")
    for name, c in m["coefficients"].items():
        row = [name, fmt(c["estimate"]), fmt(c["se"]), fmt(c["statistic"], 2),
               "-" if m["df"] is None else f"{m['df']:g}", fmt_p(c["p_value"]), fmt(c["ci_lower"]), fmt(c["ci_upper"])]
        table.add_row(*row, *((fmt_p(perm["p_value"][name]),) if perm else ()))
    console.print(table)
    notes = [m["message"]] if m.get("message") else []
    if m["dropped_columns"]:
        notes.append(f"redundant predictors dropped: {', '.join(m['dropped_columns'])}")
    if m["rows_left_out"]:
        notes.append(f"left out (missing moderator): line(s) {', '.join(map(str, m['rows_left_out']))}")
    if perm:
        kind = "exact" if perm["exact"] else f"{perm['iterations']} random permutations, seed {perm['seed']}"
        notes.append(f"permutation test: {kind}")
    for note in notes:
        console.print(f"note: {note}", highlight=False)
    methods = m["methods"]
    console.print(f"Methods: {methods['model']}, tau^2 estimator {methods['estimator']}; {methods['test']}; "
                  f"tau^2 CI: {methods['tau2_ci']}; {methods['coding']}.", highlight=False)


def _heading_lines(m: dict[str, Any], title: str) -> list[str]:
    """print.rma-style lines of a meta-regression payload."""
    from metapsych.commands.pool import fmt, fmt_p, interval

    methods = m["methods"]
    kind = "Fixed-effects" if m["estimator"] == "EE" else "Mixed-effects"
    lines = [f"{kind} model: {title} (k = {m['k']}; tau^2 estimator: {m['estimator']})", ""]
    if m["estimator"] != "EE":
        lines += [
            (f"tau^2 (estimated amount of residual heterogeneity):     {fmt(m['tau2'])} (SE = {fmt(m['tau2_se'])}), "
             f"{methods['level']:.0%} CI {interval(m['tau2_ci'])}"),
            f"tau (square root of estimated tau^2 value):             {fmt(m['tau'])}",
            f"I^2 (residual heterogeneity / unaccounted variability): {fmt(m['I2'], 2)}% {interval(m['I2_ci'], 2)}",
            f"H^2 (unaccounted variability / sampling variability):   {fmt(m['H2'], 2)}",
            (f"R^2 (amount of heterogeneity accounted for):            "
             f"{'-' if m['R2'] is None else fmt(m['R2'], 2) + '%'}"),
            "",
        ]
    lines.append(f"Test for residual heterogeneity: QE(df = {m['QE_df']}) = {fmt(m['QE'])}, "
                 f"p-val = {fmt_p(m['QE_p'])}")
    if m["QM_df2"] is not None:
        test = f"F(df1 = {m['QM_df']}, df2 = {m['QM_df2']:g}) = {fmt(m['QM'])}"
    else:
        test = f"QM(df = {m['QM_df']}) = {fmt(m['QM'])}"
    perm = m.get("permutation")
    extra = f" (permutation p-val = {fmt_p(perm['QM_p'])})" if perm else ""
    lines += [f"Test of moderators: {test}, p-val = {fmt_p(m['QM_p'])}{extra}", ""]
    return lines
