"""Forest plots in the layout reviewers know from RevMan and R's meta, and simpler interval plots.

Columns: study label, arm sizes, the CI plot (squares sized by weight), g with its 95% CI as text, weight
and risk of bias. Below the studies: the pooled diamond, the prediction interval and a footer with the
heterogeneity and test statistics. With ``groups`` the studies come in subgroup blocks, each with its own
diamond, and the footer gives the test for subgroup differences. Every number comes from the results
document; nothing is computed here except the geometry. Drawn on ``vector.Canvas`` (fast, deterministic
SVG and PNG from one drawing); font sizes are fixed and the height grows with the number of rows, so
plots stay readable at 100+ studies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from metapsych.report.style import COLOURS, fmt, fmt_ci, p_text
from metapsych.report.vector import Canvas, nice_ticks

Row = dict[str, Any]

WIDTH = 960.0
ROW_H = 21.0
TOP = 58.0
FONT = 12.0
SMALL = 11.0
LABEL_CHARS = 40
COLUMNS = {"study": (10.0, "start"), "n1": (345.0, "end"), "n2": (405.0, "end"), "effect": (815.0, "end"),
           "weight": (880.0, "end"), "rob": (925.0, "middle")}
PLOT = (435.0, 680.0)
ROB_MARK = {"low": "+", "some": "?", "high": "−"}
X_LIMIT = 4.0


@dataclass(frozen=True)
class Scale:
    """Maps effect sizes to pixels across the plot column."""

    lo: float
    hi: float
    left: float
    right: float

    def __call__(self, x: float) -> float:
        return self.left + (min(max(x, self.lo), self.hi) - self.lo) / (self.hi - self.lo) * (self.right - self.left)


def forest_plot(
    studies: Sequence[Row],
    pooled: Row | None,
    *,
    groups: Sequence[Row] | None = None,
    subgroup_test: Row | None = None,
    title: str = "",
    model_label: str = "Random-effects model",
    xlabel: str = "Hedges' g",
    favours: tuple[str, str] = ("favours comparator", "favours therapy"),
) -> tuple[bytes, bytes]:
    """Draw a forest plot and return it as (svg, png) bytes.

    ``studies`` rows use the results document's study keys (study, yi, ci_lower, ci_upper, weight,
    n_arm1, n_arm2, rob); ``pooled`` is a MODEL dict. ``groups`` (subgroup blocks) are dicts with
    ``label``, ``studies`` and ``model`` (a MODEL dict or None); without them all studies form one block.
    """
    blocks = list(groups) if groups else [{"label": "", "studies": studies, "model": None}]
    rows = _rows(blocks, pooled, model_label)
    footer = _footer(pooled, subgroup_test)
    bottom = TOP + len(rows) * ROW_H
    canvas = Canvas(WIDTH, bottom + 62 + 17 * len(footer))
    scale = Scale(*_xlim(rows), *PLOT)
    _header(canvas, title)
    canvas.line(scale(0.0), TOP - 4, scale(0.0), bottom, COLOURS["muted"], 1)
    if pooled and pooled.get("estimate") is not None:
        canvas.line(scale(pooled["estimate"]), TOP - 4, scale(pooled["estimate"]), bottom, COLOURS["pooled"], 1,
                    dash=True)
    for i, row in enumerate(rows):
        _DRAW[row["kind"]](canvas, scale, TOP + (i + 0.5) * ROW_H, row)
    _axis(canvas, scale, bottom, xlabel, favours)
    for i, line in enumerate(footer):
        canvas.text(10, bottom + 62 + 17 * i, line, size=SMALL)
    return canvas.svg(), canvas.png()


def _rows(blocks: Sequence[Row], pooled: Row | None, model_label: str) -> list[Row]:
    """Flatten blocks into drawable rows (kinds: header, study, diamond, pi, blank)."""
    rows: list[Row] = []
    weights = [s.get("weight") or 0.0 for b in blocks for s in b["studies"]]
    wmax = max(weights) if weights and max(weights) > 0 else 1.0
    for block in blocks:
        label, model = block["label"], block.get("model")
        if label:
            rows.append({"kind": "header", "label": label})
        for study in block["studies"]:
            rows.append({"kind": "study", "data": study, "wrel": (study.get("weight") or 0.0) / wmax})
        if label and model and model.get("estimate") is not None:
            rows.append({"kind": "diamond", "label": f"Subtotal ({_k_i2(model)})", "model": model, "total": False})
        if label:
            rows.append({"kind": "blank"})
    if pooled and pooled.get("estimate") is not None:
        rows.append({"kind": "diamond", "label": model_label, "model": pooled, "total": True})
        if pooled.get("pi_lower") is not None and pooled.get("pi_upper") is not None:
            rows.append({"kind": "pi", "label": "Prediction interval", "model": pooled})
    return rows


def _k_i2(model: Row) -> str:
    i2 = model.get("I2")
    k = model.get("k", "–")
    return f"k = {k}, I² = {fmt(i2, 0)}%" if i2 is not None else f"k = {k}"


def _xlim(rows: Sequence[Row]) -> tuple[float, float]:
    """A range covering the CIs (and the PI), clamped to +-X_LIMIT, always including 0."""
    values = [0.0]
    for row in rows:
        src = row.get("data") or row.get("model") or {}
        keys = ("pi_lower", "pi_upper") if row["kind"] == "pi" else ("ci_lower", "ci_upper")
        values += [src[k] for k in keys if src.get(k) is not None]
    return interval_range(values)


def interval_range(values: Sequence[float]) -> tuple[float, float]:
    """Half-unit-rounded range of the values and 0, at least 1 wide, within +-X_LIMIT."""
    values = [v for v in values if v is not None and math.isfinite(v)] + [0.0]
    lo = max(math.floor(min(values) * 2) / 2, -X_LIMIT)
    hi = min(math.ceil(max(values) * 2) / 2, X_LIMIT)
    if hi - lo < 1.0:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def _col(canvas: Canvas, column: str, y: float, text: str, **kwargs: Any) -> None:
    x, anchor = COLUMNS[column]
    canvas.text(x, y, text, anchor=anchor, size=kwargs.pop("size", FONT), **kwargs)


def _header(canvas: Canvas, title: str) -> None:
    if title:
        canvas.text(10, 16, title, size=14, bold=True)
    heads = {"study": "Study", "n1": "N therapy", "n2": "N comp.", "effect": "g [95% CI]", "weight": "Weight",
             "rob": "RoB"}
    for column, text in heads.items():
        _col(canvas, column, TOP - 16, text, bold=True, size=SMALL)


def _draw_study(canvas: Canvas, scale: Scale, y: float, row: Row) -> None:
    data = row["data"]
    label = str(data.get("study") or data.get("trial") or "")
    _col(canvas, "study", y, label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…")
    _col(canvas, "n1", y, _int(data.get("n_arm1")))
    _col(canvas, "n2", y, _int(data.get("n_arm2")))
    _col(canvas, "effect", y, f"{fmt(data.get('yi'))} {fmt_ci(data.get('ci_lower'), data.get('ci_upper'))}")
    weight = data.get("weight")
    _col(canvas, "weight", y, f"{weight:.1f}%" if weight is not None else "–")
    cl, cu, yi = data.get("ci_lower"), data.get("ci_upper"), data.get("yi")
    if cl is not None and cu is not None:
        canvas.line(scale(cl), y, scale(cu), y, COLOURS["text"], 1)
        for value, edge, sign in ((cl, scale.lo, -1), (cu, scale.hi, 1)):
            if (value - edge) * sign > 0:
                x = scale(edge)
                canvas.polygon([(x + 5 * sign, y), (x, y - 4), (x, y + 4)], COLOURS["text"])
    if yi is not None and scale.lo <= yi <= scale.hi:
        half = (4.0 + 9.0 * math.sqrt(row["wrel"])) / 2
        canvas.rect(scale(yi) - half, y - half, 2 * half, 2 * half, COLOURS["point"])
    rob = data.get("rob")
    if rob in ROB_MARK:
        x, _ = COLUMNS["rob"]
        canvas.circle(x, y, 7, COLOURS[rob])
        canvas.text(x, y, ROB_MARK[rob], size=SMALL, anchor="middle", bold=True, colour="#ffffff")


def _draw_diamond(canvas: Canvas, scale: Scale, y: float, row: Row) -> None:
    m = row["model"]
    _col(canvas, "study", y, row["label"], bold=True)
    _col(canvas, "effect", y, f"{fmt(m['estimate'])} {fmt_ci(m.get('ci_lower'), m.get('ci_upper'))}", bold=True)
    if row["total"]:
        _col(canvas, "weight", y, "100%", bold=True)
    cl = m.get("ci_lower") if m.get("ci_lower") is not None else m["estimate"]
    cu = m.get("ci_upper") if m.get("ci_upper") is not None else m["estimate"]
    est = scale(m["estimate"])
    canvas.polygon([(scale(cl), y), (est, y - 7), (scale(cu), y), (est, y + 7)], COLOURS["pooled"])


def _draw_pi(canvas: Canvas, scale: Scale, y: float, row: Row) -> None:
    m = row["model"]
    _col(canvas, "study", y, row["label"])
    _col(canvas, "effect", y, fmt_ci(m["pi_lower"], m["pi_upper"]))
    x0, x1 = scale(m["pi_lower"]), scale(m["pi_upper"])
    canvas.rect(x0, y - 3, x1 - x0, 6, COLOURS["pi"], opacity=0.45)


def _draw_header_row(canvas: Canvas, scale: Scale, y: float, row: Row) -> None:
    _col(canvas, "study", y, row["label"], bold=True)


def _draw_blank(canvas: Canvas, scale: Scale, y: float, row: Row) -> None:
    """Space between subgroup blocks."""


_DRAW: dict[str, Callable[[Canvas, Scale, float, Row], None]] = {
    "study": _draw_study, "diamond": _draw_diamond, "pi": _draw_pi, "header": _draw_header_row,
    "blank": _draw_blank}


def _axis(canvas: Canvas, scale: Scale, y: float, xlabel: str, favours: tuple[str, str]) -> None:
    """The x axis with ticks, its label and the 'favours' labels either side of no effect."""
    canvas.line(scale.left, y + 2, scale.right, y + 2, COLOURS["text"], 1)
    for tick in nice_ticks(scale.lo, scale.hi):
        x = scale(tick)
        canvas.line(x, y + 2, x, y + 6, COLOURS["text"], 1)
        canvas.text(x, y + 14, f"{tick:g}", size=SMALL, anchor="middle")
    zero = scale(0.0)
    canvas.text((scale.left + scale.right) / 2, y + 30, xlabel, size=SMALL, anchor="middle")
    canvas.text(zero - 4, y + 44, f"← {favours[0]}", size=10, anchor="end", colour=COLOURS["muted"])
    canvas.text(zero + 4, y + 44, f"{favours[1]} →", size=10, anchor="start", colour=COLOURS["muted"])


def _int(value: Any) -> str:
    return "–" if value is None else str(int(round(float(value))))


def _footer(pooled: Row | None, subgroup_test: Row | None) -> list[str]:
    """Heterogeneity and test statistics, as RevMan prints them under the plot."""
    lines: list[str] = []
    if pooled and pooled.get("estimate") is not None:
        tau2_ci = pooled.get("tau2_ci") or [None, None]
        i2_ci = pooled.get("I2_ci") or [None, None]
        lines.append(
            f"Heterogeneity: τ² = {fmt(pooled.get('tau2'), 3)} {fmt_ci(tau2_ci[0], tau2_ci[1], 3)}; "
            f"I² = {fmt(pooled.get('I2'), 1)}% {fmt_ci(i2_ci[0], i2_ci[1], 1)}; "
            f"Q = {fmt(pooled.get('Q'))}, df = {_int(pooled.get('Q_df'))}, {p_text(pooled.get('Q_p'))}")
        df = pooled.get("df")
        stat = "z" if df is None else f"t({fmt(df, 0) if float(df).is_integer() else fmt(df)})"
        lines.append(f"Test for overall effect: {stat} = {fmt(pooled.get('statistic'))}, "
                     f"{p_text(pooled.get('p_value'))} ({pooled.get('estimator') or '–'}, {pooled.get('test') or '–'})")
    if subgroup_test:
        lines.append(f"Test for subgroup differences: Q = {fmt(subgroup_test.get('Q_between'))}, "
                     f"df = {_int(subgroup_test.get('df'))}, {p_text(subgroup_test.get('p_value'))}")
    lines.append("Risk of bias: + low, ? some concerns, − high")
    return lines


def interval_plot(rows: Sequence[Row], *, title: str = "", xlabel: str = "Hedges' g [95% CI]",
                  note: str = "") -> tuple[bytes, bytes]:
    """A labelled list of estimates with CIs (cumulative forest plot, ranking of approaches).

    Rows: ``label``, ``estimate``, ``ci_lower``, ``ci_upper`` and optional ``open`` (hollow marker); a row
    with ``header`` is a bold group label.
    """
    width, label_end, left, right, text_end = 900.0, 330.0, 345.0, 700.0, 890.0
    bottom = TOP + len(rows) * ROW_H
    canvas = Canvas(width, bottom + 56 + (18 if note else 0))
    values = [r.get(k) for r in rows for k in ("ci_lower", "ci_upper", "estimate")]
    scale = Scale(*interval_range([v for v in values if v is not None]), left, right)
    if title:
        canvas.text(10, 16, title, size=14, bold=True)
    canvas.text(text_end, TOP - 16, "g [95% CI]", size=SMALL, anchor="end", bold=True)
    canvas.line(scale(0.0), TOP - 4, scale(0.0), bottom, COLOURS["muted"], 1)
    for i, row in enumerate(rows):
        y = TOP + (i + 0.5) * ROW_H
        label = str(row.get("label") or "")
        if row.get("header"):
            canvas.text(10, y, label, bold=True)
            continue
        canvas.text(label_end, y, label if len(label) <= 52 else label[:51] + "…", anchor="end")
        canvas.text(text_end, y, f"{fmt(row.get('estimate'))} {fmt_ci(row.get('ci_lower'), row.get('ci_upper'))}",
                    anchor="end")
        if row.get("ci_lower") is not None and row.get("ci_upper") is not None:
            canvas.line(scale(row["ci_lower"]), y, scale(row["ci_upper"]), y, COLOURS["text"], 1)
        if row.get("estimate") is not None:
            x = scale(row["estimate"])
            diamond = [(x - 6, y), (x, y - 6), (x + 6, y), (x, y + 6)]
            canvas.polygon(diamond, COLOURS["point"])
            if row.get("open"):
                canvas.polygon([(x - 3.5, y), (x, y - 3.5), (x + 3.5, y), (x, y + 3.5)], "#ffffff")
    _axis(canvas, scale, bottom, xlabel, ("favours comparator", "favours therapy"))
    if note:
        canvas.text(10, bottom + 62, note, size=10, colour=COLOURS["muted"])
    return canvas.svg(), canvas.png()
