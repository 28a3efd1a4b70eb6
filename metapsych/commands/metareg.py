"""``metapsych pool FILE.csv --mods a,b``: a mixed-effects meta-regression, as metafor's ``rma(mods = ~ a + b)``.

Moderators are columns of the effect table, read as R's read.csv reads them: a cell that is empty, NA or NaN
is missing; a column whose other cells are all numbers is numeric; any other column is categorical, its levels
the cells as written (so 'none' is a level, and '1' and '1.0' are two), with treatment coding and the first
level as R sorts them as the reference. ``factor(NAME)`` makes a numeric column categorical, its levels ordered
by value and named as R's as.character writes numbers. Coefficients are named as R names them (``NAMElevel``).
Rows with a missing moderator are left out, as R's default ``na.action`` does, and the output names their
lines (R keeps an empty cell of a text column as a level of its own; here it is missing). What metafor
refuses (a non-finite number, a one-level factor) and what no output could tell apart (two coefficients of
one name) are located errors. With ``--permutations N`` the coefficients and the omnibus test also get permutation p-values
(metafor's ``permutest``: exact when there are at most N distinct permutations, else N random ones).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metapsych.commands.pool import methods_block, number, pair
from metapsych.errors import AnalysisError, DataError, InputError, Problem

if TYPE_CHECKING:
    from metapsych.data.effect_table import EffectTable
    from metapsych.stats.metareg import Design

FACTOR = re.compile(r"^factor\(\s*([^()]+?)\s*\)$")
MISSING = ("", "na", "nan")  # as R's read.csv and na.omit see a cell: NA, NaN (and an empty cell)
MAX_MODERATOR = 1e100  # beyond it the model matrix's cross-products overflow
MAX_PERMUTATIONS = 1_000_000


@dataclass(frozen=True)
class Moderators:
    """The moderator columns as ``meta_regression`` takes them: values per term (floats for numeric terms,
    text for categorical ones, None for missing), level orders for ``factor()`` of numbers, and notes."""

    values: dict[str, list[object]]
    order: dict[str, list[str]]
    notes: list[str]


def parse_mods(text: str) -> list[str]:
    """The moderator terms of ``--mods`` (comma-separated column names, ``factor(NAME)`` allowed), with
    ``factor( NAME )`` written as R writes it."""
    terms = [term.strip() for term in text.split(",")]
    if not text.strip() or any(not term for term in terms):
        raise InputError(f"--mods: {text!r} is not a list of column names (expected e.g. 'year,factor(format)')")
    out = []
    for term in terms:
        match = FACTOR.match(term)
        if match is None and ("(" in term or ")" in term):
            raise InputError(f"--mods: {term!r} is not a column name or factor(NAME)")
        out.append(f"factor({match.group(1)})" if match else term)
    seen: dict[tuple[str, bool], str] = {}
    for term in out:
        key = (_column(term).lower(), term.startswith("factor("))
        if key in seen:
            raise InputError(f"--mods: {seen[key]} and {term} name the same column (columns are matched "
                             "without regard to case)")
        seen[key] = term
    return out


def _column(term: str) -> str:
    match = FACTOR.match(term)
    return match.group(1) if match else term


def moderator_values(table: EffectTable, terms: list[str]) -> Moderators:
    """Read each term's column as R's read.csv and model.matrix would: numeric if every cell that is not
    empty or NA is a number, else categorical (the cells' text); ``factor()`` makes numbers categorical,
    ordered by value and labelled as R's as.character writes them."""
    problems: list[Problem] = []
    values: dict[str, list[object]] = {}
    order: dict[str, list[str]] = {}
    notes: list[str] = []
    for term in terms:
        column = _column(term)
        cells = table.column(column)
        if cells is None:
            problems.append(Problem(table.file, 1, column, "no such column for --mods",
                                    f"one of: {', '.join(table.columns) or 'none'}"))
            continue
        text = [None if cell.strip().lower() in MISSING else cell.strip() for cell in cells]
        numbers = [_number(cell) for cell in text]
        numeric = all(cell is None or number is not None for cell, number in zip(text, numbers))
        if numeric:
            problems += _unusable_numbers(table, column, text, numbers)
            if term.startswith("factor("):
                labels = [None if n is None else r_label(n) for n in numbers]
                order[term] = [r_label(n) for n in sorted({n for n in numbers if n is not None})]
                values[term] = labels
            else:
                values[term] = [None if n is None else float(n) for n in numbers]
            continue
        values[term] = list(text)
        if (note := _text_in_numbers(table, term, text, numbers)) is not None:
            notes.append(note)
    if problems:
        raise DataError(problems)
    if values and not any(all(v[i] is not None for v in values.values()) for i in range(len(table.yi))):
        empty = [term for term, v in values.items() if all(value is None for value in v)] or terms
        raise DataError([Problem(table.file, None, _column(term), "no row has a value of every moderator",
                                 "values in the rows to be analysed") for term in empty])
    return Moderators(values, order, notes)


def _number(cell: str | None) -> float | None:
    """The cell as a number (either decimal mark; Inf and NaN too), or None if it is text."""
    from metapsych.data.metapsy import parse_number

    if cell is None:
        return None
    try:
        return parse_number(cell)
    except ValueError:
        return None


def _unusable_numbers(table: EffectTable, column: str, text: list[str | None],
                      numbers: list[float | None]) -> list[Problem]:
    """A non-finite or overflowing number in a numeric moderator, by line (metafor stops on them)."""
    out = []
    for line, cell, value in zip(table.lines, text, numbers):
        if value is None:
            continue
        if not math.isfinite(value):
            out.append(Problem(table.file, line, column, f"'{cell}' is not a finite number",
                               "a finite number, or NA for a missing value"))
        elif abs(value) > MAX_MODERATOR:
            out.append(Problem(table.file, line, column, f"{cell} is too large for a moderator",
                               f"values below {MAX_MODERATOR:g} in absolute size (rescale the column)"))
    return out


def _text_in_numbers(table: EffectTable, term: str, text: list[str | None], numbers: list[float | None]) -> str | None:
    """A note when a column of mostly numbers is categorical because of a few text cells (as R reads it)."""
    given = [(line, cell, n) for line, cell, n in zip(table.lines, text, numbers) if cell is not None]
    words = [(line, cell) for line, cell, n in given if n is None]
    if not given or 2 * len(words) >= len(given):  # a few text cells among numbers only
        return None
    shown = ", ".join(f"line {line}: '{cell}'" for line, cell in words[:3]) + (", ..." if len(words) > 3 else "")
    return (f"{term} is categorical because {len(words)} of its cells are text ({shown}); write NA for a "
            "missing value to keep it numeric")


def r_label(value: float) -> str:
    """A number as R's as.character writes it: up to 15 significant digits, in fixed or scientific
    notation, whichever is narrower (fixed on a tie); these are the level names of R's factor()."""
    digits = next(d for d in range(1, 16) if float(f"{value:.{d - 1}e}") == float(f"{value:.14e}"))
    sci = f"{value:.{digits - 1}e}"
    exponent = int(sci.split("e")[1])
    fixed = f"{value:.{max(0, digits - 1 - exponent)}f}"
    return fixed if len(fixed) <= len(sci) else sci


def metareg_payload(table: EffectTable, terms: list[str], method: str, test: str, level: float,
                    permutations: int, seed: int) -> dict[str, Any]:
    """The meta-regression as a JSON-ready dict (numbers that cannot be computed are null, never NaN)."""
    import numpy as np

    from metapsych.stats.heterogeneity import confint_tau2
    from metapsych.stats.metareg import design_matrix, fit_design

    mods = moderator_values(table, terms)
    design = design_matrix(mods.values, mods.order)
    _check_design(table, design)
    try:
        model = fit_design(np.asarray(table.yi), np.asarray(table.vi), design, estimator=method, test=test,
                           level=level)
    except ValueError as exc:
        why = "".join(f"; {note}" for note in mods.notes)
        raise AnalysisError(f"{table.file}: the meta-regression cannot be fitted: {exc}{why}") from None
    res, rows = model.fit, model.design.rows
    moderated = len(model.names) > 1  # else every moderator column was dropped as redundant
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
        "tau2": number(res.tau2), "tau2_se": number(res.tau2_se), "tau2_ci": pair(ci.tau2_lower, ci.tau2_upper),
        "tau": number(res.tau), "I2": number(res.I2), "I2_ci": pair(ci.I2_lower, ci.I2_upper),
        "H2": number(res.H2), "H2_ci": pair(ci.H2_lower, ci.H2_upper), "R2": number(res.R2) if moderated else None,
        "QE": number(res.Q), "QE_df": int(res.Q_df), "QE_p": number(res.Q_p),
        "QM": number(res.QM) if moderated else None, "QM_df": int(res.QM_df) if moderated else None,
        "QM_df2": number(res.df) if moderated and res.test != "z" else None,
        "QM_p": number(res.QM_p) if moderated else None,
        "dropped_columns": list(model.dropped),
        "rows_left_out": [table.lines[i] for i in left_out],
        "levels": {name: list(levels) for name, levels in model.design.levels.items()},
    }
    if permutations:
        payload["permutation"] = _permutation(y, v, model.design.X, model.names, method, test, level,
                                              permutations, seed)
    common = methods_block(method, res.test, level, int(res.k) - int(res.p))
    payload["methods"] = {**{key: text for key, text in common.items() if key != "prediction_interval"},
                          "model": "mixed-effects meta-regression" if method != "EE" else "fixed-effects meta-regression",
                          "coding": "treatment coding; reference level: the first as R sorts them",
                          "tau2": "residual heterogeneity; R2 = metafor's pseudo-R^2 against the model without "
                                  "moderators (same estimator)"}
    messages = [m for m in (res.message, ci.message if method != "EE" else None) if m] + mods.notes
    if not moderated:
        messages.append("no moderator coefficient is left, so there is no test of moderators")
    if left_out:
        messages.append(f"{len(left_out)} row(s) with a missing moderator left out (as R's na.action)")
    payload["message"] = "; ".join(messages) or None
    return payload


def _check_design(table: EffectTable, design: Design) -> None:
    """metafor's and R's refusals, as located errors: a categorical moderator with one level in the rows
    analysed (R: "contrasts can be applied only to factors with 2 or more levels"), and two coefficients
    with the same name (a level of one moderator and another column), which no output could tell apart."""
    problems = [Problem(table.file, None, _column(term), f"has one level ({levels[0]!r}) in the rows analysed",
                        "at least two levels for a categorical moderator")
                for term, levels in design.levels.items() if len(levels) < 2]
    twice = sorted({name for name in design.names if design.names.count(name) > 1})
    problems += [Problem(table.file, 1, name, "two coefficients would have this name (a level of one moderator "
                         "and another column)", "columns and levels that do not combine into each other's "
                         "names; rename a column") for name in twice]
    if problems:
        raise DataError(problems)


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
    """--mods excludes --by and --diagnostics; --permutations is a count up to MAX_PERMUTATIONS (0: none)."""
    if by is not None:
        raise InputError("--mods cannot be combined with --by; add the subgroup column to --mods as a "
                         "categorical moderator instead")
    if diagnostics:
        raise InputError("--diagnostics cannot be combined with --mods (it diagnoses the model without moderators)")
    if not 0 <= permutations <= MAX_PERMUTATIONS:
        raise InputError(f"--permutations: {permutations} is outside 0..{MAX_PERMUTATIONS:,} (expected a count, "
                         "e.g. 1000)")


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
    from metapsych.commands.pool import fmt, interval, p_val

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
                 f"{p_val(m['QE_p'])}")
    if m["QM_df"] is None:
        return [*lines, "Test of moderators: none (no moderator coefficient is left)", ""]
    if m["QM_df2"] is not None:
        test = f"F(df1 = {m['QM_df']}, df2 = {m['QM_df2']:g}) = {fmt(m['QM'])}"
    else:
        test = f"QM(df = {m['QM_df']}) = {fmt(m['QM'])}"
    perm = m.get("permutation")
    extra = f" (permutation {p_val(perm['QM_p'])})" if perm else ""
    return [*lines, f"Test of moderators: {test}, {p_val(m['QM_p'])}{extra}", ""]
