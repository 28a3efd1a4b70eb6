"""``metapsych network``: network meta-analysis of a contrast CSV (or Metapsy rows), as tables or JSON.

Input is either contrast rows ``study, treat1, treat2, yi, vi`` (``sei`` instead of ``vi``; netmeta's
``studlab, TE, seTE`` also accepted; optional ``n1, n2``) with yi = effect of treat1 versus treat2, or
Metapsy rows ``study, condition_arm1, condition_arm2`` with ``.g, .g_se`` (or ``yi, vi`` or
``precalc_g, precalc_g_se``), where the effect is arm1 versus arm2 (positive = arm1 better). A
multi-arm trial must give all its pairwise contrasts; every problem is reported as FILE:LINE: column.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metapsych.errors import DataError, InputError, Problem

_STUDY = ("study", "studlab", "author")
_CONTRAST = {"treat1": ("treat1",), "treat2": ("treat2",), "yi": ("yi", "TE"), "vi": ("vi",),
             "sei": ("sei", "seTE", "se")}
_METAPSY = {"treat1": ("condition_arm1",), "treat2": ("condition_arm2",), "yi": (".g", "yi", "precalc_g"),
            "sei": (".g_se", "precalc_g_se"), "vi": ("vi",)}


@dataclass(frozen=True)
class ContrastTable:
    """Contrast rows read from a file, with the physical line of each row."""

    study: list[str]
    treat1: list[str]
    treat2: list[str]
    yi: list[float]
    vi: list[float]
    n1: list[float] | None
    n2: list[float] | None
    lines: list[int]
    layout: str


def run(file: Path, *, reference: str | None, random: bool, small_values: str, level: float, as_json: bool,
        funnel_order: str | None = None) -> int:
    """Fit the network and print it; returns the exit code."""
    from metapsych.stats.network import fit_network, network_payload
    from metapsych.stats.network_data import NetworkDataError

    if small_values not in ("bad", "good"):
        raise InputError(f"--small-values must be 'bad' or 'good', not '{small_values}'")
    if not 0 < level < 1:
        raise InputError(f"--level: {level} is outside (0, 1) (expected e.g. 0.95)")
    table = read_contrasts(file)
    _check_reference(reference, table, file)
    rows = _completed(table)
    try:
        fit = fit_network(rows.study, rows.treat1, rows.treat2, rows.yi, rows.vi, reference=reference,
                          model="random" if random else "common", level=level, small_values=small_values,
                          n1=rows.n1, n2=rows.n2, notes=rows.notes)
    except NetworkDataError as exc:
        lines = sorted({table.lines[rows.source[r]] for r in exc.rows}) or [None]
        raise DataError([Problem(str(file), line, _column(exc.field, table.layout), exc.problem, exc.expected)
                         for line in lines]) from None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    payload = network_payload(fit)
    if funnel_order is not None:
        payload["funnel"] = _funnel(rows, funnel_order)
    if as_json:
        print(json.dumps(payload, indent=2, allow_nan=False))
    else:
        from metapsych.commands.network_render import render

        render(payload)
    return 0


def _completed(table: ContrastTable) -> Any:
    """Metapsy rows: derive the missing contrasts of multi-arm trials given against one shared arm."""
    from metapsych.stats.network_data import CompletedRows, complete_multiarm

    if table.layout == "metapsy":
        return complete_multiarm(table.study, table.treat1, table.treat2, table.yi, table.vi, table.n1, table.n2)
    return CompletedRows(table.study, table.treat1, table.treat2, table.yi, table.vi, table.n1, table.n2,
                         list(range(len(table.study))), [])


def _column(field: str, layout: str) -> str:
    if layout == "metapsy":
        return {"treat1": "condition_arm1", "treat2": "condition_arm2", "yi": ".g", "vi": ".g_se"}.get(field, field)
    return field


def _funnel(rows: Any, order: str) -> dict[str, Any]:
    """The comparison-adjusted funnel's Egger test (netmeta metabias) for the given treatment order."""
    from metapsych.stats.network_funnel import comparison_adjusted_funnel

    treatments = [t.strip() for t in order.split(",") if t.strip()]
    try:
        f = comparison_adjusted_funnel(rows.study, rows.treat1, rows.treat2, rows.yi, rows.vi, treatments)
    except ValueError as exc:
        raise InputError(f"--funnel-order: {exc}") from None
    from metapsych.stats.values import finite_or_none

    return {"order": list(f.order), "egger_bias": finite_or_none(f.egger_bias), "egger_se": finite_or_none(f.egger_se),
            "egger_statistic": finite_or_none(f.egger_statistic), "egger_df": f.egger_df,
            "egger_p": finite_or_none(f.egger_p),
            "method": "comparison-adjusted funnel (Chaimani 2013), Egger's regression as netmeta's metabias"}


def _check_reference(reference: str | None, table: ContrastTable, file: Path) -> None:
    """``--reference`` names a treatment of the file (the usage error names the option and the file)."""
    treatments = sorted({*table.treat1, *table.treat2})
    if reference is not None and reference not in treatments:
        raise InputError(f"--reference: {reference!r} is not a treatment in {file} "
                         f"(expected one of {', '.join(treatments)})")


def read_contrasts(path: Path) -> ContrastTable:
    """Read contrast or Metapsy rows; raises DataError listing every unreadable cell."""
    from metapsych.data.metapsy import read_rows, too_wide

    file = str(path)
    header, rows = read_rows(path)
    if header and header[0] in ("", '""'):
        header, rows = header[1:], [(line, cells[1:]) for line, cells in rows]
    layout, cols = _layout(header, file)
    index = {name: i for i, name in enumerate(header)}
    problems: list[Problem] = []
    out: dict[str, list[Any]] = {k: [] for k in ("study", "treat1", "treat2", "yi", "vi", "n1", "n2", "lines")}
    for line, cells in rows:
        if (wide := too_wide(file, line, cells, len(header))) is not None:
            problems.append(wide)
            continue
        cells = (cells + [""] * len(header))[: len(header)]  # fits, or has only empty cells beyond the header
        get = lambda name: cells[index[name]].strip() if name else ""  # noqa: E731
        out["lines"].append(line)
        for key in ("study", "treat1", "treat2"):
            value = get(cols[key])
            if not value:
                problems.append(Problem(file, line, cols[key], "missing", "a label"))
            out[key].append(value)
        yi = _number(get(cols["yi"]), file, line, cols["yi"], problems)
        out["yi"].append(yi)
        out["vi"].append(_variance(get, cols, file, line, problems))
        for key in ("n1", "n2"):
            out[key].append(_optional_number(get(cols[key]) if cols.get(key) else ""))
    problems += _variance_span(out["vi"], out["lines"], file, cols["vi"] or cols["sei"] or "vi")
    if problems:
        raise DataError(problems)
    if not out["lines"]:
        raise DataError(Problem(file, 1, "(file)", "no data rows", "one row per contrast"))
    has_n = bool(cols.get("n1")) and bool(cols.get("n2"))
    return ContrastTable(out["study"], out["treat1"], out["treat2"], out["yi"], out["vi"],
                         out["n1"] if has_n else None, out["n2"] if has_n else None, out["lines"], layout)


def _layout(header: list[str], file: str) -> tuple[str, dict[str, str]]:
    present = set(header)
    pick = lambda names: next((n for n in names if n in present), "")  # noqa: E731
    study = pick(_STUDY)
    spec, layout = (_METAPSY, "metapsy") if "condition_arm1" in present else (_CONTRAST, "contrast")
    cols = {key: pick(names) for key, names in spec.items()}
    cols["study"] = study
    if layout == "contrast":
        cols["n1"], cols["n2"] = pick(("n1", "n_arm1")), pick(("n2", "n_arm2"))
    else:
        cols["n1"], cols["n2"] = pick(("n_arm1",)), pick(("n_arm2",))
    missing = [key for key in ("study", "treat1", "treat2", "yi") if not cols[key]]
    if not (cols["vi"] or cols["sei"]):
        missing.append("vi")
    if missing:
        need = ("study, condition_arm1, condition_arm2, .g, .g_se" if layout == "metapsy"
                else "study, treat1, treat2, yi, vi (or sei)")
        raise DataError([Problem(file, 1, name, "column missing", f"columns {need}") for name in missing])
    return layout, cols


MIN_VARIANCE = 1e-18  # below this, weights overflow when squared
#: the network's estimates lose about eps x this ratio of the largest to the smallest sampling variance
#: (the Laplacian's conditioning): 1e-9 relative at 1e8, 2e-5 at 1e10 (checked against least squares by QR)
MAX_VARIANCE_RATIO = 1e8


def _number(text: str, file: str, line: int, column: str, problems: list[Problem]) -> float:
    from metapsych.data.metapsy import MAX_VALUE, parse_number

    try:
        value = parse_number(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        problems.append(Problem(file, line, column, f"'{text}' is not a number" if text else "missing",
                                "a finite number"))
        return math.nan
    if abs(value) > MAX_VALUE:
        problems.append(Problem(file, line, column, f"{text.strip()} is implausibly large",
                                f"a value below {MAX_VALUE:g} in absolute size"))
        return math.nan
    return value


def _variance_span(vi: list[float], lines: list[int], file: str, column: str) -> list[Problem]:
    """A problem at the smallest sampling variance when the variances span more than MAX_VARIANCE_RATIO."""
    finite = [(v, line) for v, line in zip(vi, lines) if math.isfinite(v) and v > 0]
    if not finite:
        return []
    (low, at), (high, top) = min(finite), max(finite)
    if high <= MAX_VARIANCE_RATIO * low:
        return []
    return [Problem(file, at, column, f"sampling variance {low:g} is {high / low:.1e} times smaller than the "
                    f"largest ({high:g}, line {top})", f"variances within a factor of {MAX_VARIANCE_RATIO:g} of "
                    "each other (beyond it the network's estimates lose precision)")]


def _variance(get: Any, cols: dict[str, str], file: str, line: int, problems: list[Problem]) -> float:
    if cols["vi"] and get(cols["vi"]):
        value = _number(get(cols["vi"]), file, line, cols["vi"], problems)
        column, square = cols["vi"], value
    else:
        column = cols["sei"] or cols["vi"]
        value = _number(get(column), file, line, column, problems)
        square = value * value
    if math.isfinite(value) and value <= 0:
        problems.append(Problem(file, line, column, f"{value:g} is not positive", f"{column} > 0"))
    elif math.isfinite(value) and square < MIN_VARIANCE:
        problems.append(Problem(file, line, column, f"{value:g} is implausibly small",
                                f"a sampling variance of at least {MIN_VARIANCE:g}"))
    return square


def _optional_number(text: str) -> float:
    from metapsych.data.metapsy import parse_number

    try:
        value = parse_number(text)
    except ValueError:
        return math.nan
    return math.nan if value is None else value
