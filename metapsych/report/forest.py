"""Forest plots in the layout reviewers know from RevMan and R's meta.

Columns: study label, arm sizes, the CI plot (squares sized by weight), g with its 95% CI as text, weight
and risk of bias. Below the studies: the pooled diamond, the prediction interval and a footer with the
heterogeneity and test statistics. With ``groups`` the studies come in subgroup blocks, each with its own
diamond, and the footer gives the test for subgroup differences. Every number comes from the results
document; nothing is computed here except the geometry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from metapsych.report.style import COLOURS, ROW_HEIGHT_IN, figure_bytes, fmt, fmt_ci, new_figure, p_text

Row = dict[str, Any]

WIDTH_IN = 10.0
HEADER_IN = 0.45
AXIS_IN = 0.62
LINE_IN = 0.19
LABEL_CHARS = 38
# Column anchors in figure fraction: (x, horizontal alignment).
COLUMNS = {
    "study": (0.01, "left"),
    "n1": (0.36, "right"),
    "n2": (0.425, "right"),
    "effect": (0.845, "right"),
    "weight": (0.915, "right"),
    "rob": (0.960, "center"),
}
PLOT_LEFT, PLOT_RIGHT = 0.45, 0.70
ROB_MARK = {"low": "P", "some": "o", "high": "X"}  # filled plus, circle, filled x
X_LIMIT = 4.0


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
    plot_h = max(len(rows), 1) * ROW_HEIGHT_IN
    height = HEADER_IN + plot_h + AXIS_IN + LINE_IN * len(footer) + 0.15
    fig = new_figure(WIDTH_IN, height)
    bottom = (AXIS_IN + LINE_IN * len(footer) + 0.1) / height
    ax = fig.add_axes((PLOT_LEFT, bottom, PLOT_RIGHT - PLOT_LEFT, plot_h / height))
    xlim = _xlim(rows)
    _draw_rows(fig, ax, rows, xlim)
    _draw_header(fig, (bottom * height + plot_h + 0.12) / height, title)
    _draw_axis(ax, xlim, xlabel, favours, len(rows), (pooled or {}).get("estimate"))
    for i, line in enumerate(footer):
        fig.text(0.01, (LINE_IN * (len(footer) - i) - 0.05) / height, line, fontsize=8, parse_math=False)
    return figure_bytes(fig)


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
            rows.append({"kind": "diamond", "label": f"Subtotal ({_i2_text(model)})", "model": model})
        if label:
            rows.append({"kind": "blank"})
    if pooled and pooled.get("estimate") is not None:
        rows.append({"kind": "diamond", "label": model_label, "model": pooled})
        if pooled.get("pi_lower") is not None and pooled.get("pi_upper") is not None:
            rows.append({"kind": "pi", "label": "Prediction interval", "model": pooled})
    return rows


def _i2_text(model: Row) -> str:
    i2 = model.get("I2")
    return f"k = {model.get('k', '–')}, I² = {fmt(i2, 0)}%" if i2 is not None else f"k = {model.get('k', '–')}"


def _xlim(rows: Sequence[Row]) -> tuple[float, float]:
    """A symmetric-enough range covering the CIs (and the PI), clamped to +-X_LIMIT, always including 0."""
    values = [0.0]
    for row in rows:
        src = row.get("data") or row.get("model") or {}
        keys = ("pi_lower", "pi_upper") if row["kind"] == "pi" else ("ci_lower", "ci_upper")
        values += [src[k] for k in keys if src.get(k) is not None]
    lo = max(math.floor(min(values) * 2) / 2, -X_LIMIT)
    hi = min(math.ceil(max(values) * 2) / 2, X_LIMIT)
    if hi - lo < 1.0:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def _draw_rows(fig: Any, ax: Any, rows: Sequence[Row], xlim: tuple[float, float]) -> None:
    """Text columns (in figure x, data y) and the CI graphics for each row."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Polygon
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(fig.transFigure, ax.transData)
    segments, squares, sizes, clipped = [], [], [], []
    lo, hi = xlim
    for i, row in enumerate(rows):
        y = -float(i)
        kind = row["kind"]
        if kind == "header":
            _text(ax, trans, "study", y, row["label"], weight="bold")
        elif kind == "study":
            data = row["data"]
            _study_text(ax, trans, y, data)
            cl, cu = data.get("ci_lower"), data.get("ci_upper")
            if cl is not None and cu is not None:
                segments.append([(max(cl, lo), y), (min(cu, hi), y)])
                clipped += [(lo, y, "<")] if cl < lo else []
                clipped += [(hi, y, ">")] if cu > hi else []
            if data.get("yi") is not None and lo <= data["yi"] <= hi:
                squares.append((data["yi"], y))
                sizes.append((3.0 + 9.0 * math.sqrt(row["wrel"])) ** 2)
        elif kind == "diamond":
            m = row["model"]
            _text(ax, trans, "study", y, row["label"], weight="bold")
            _text(ax, trans, "effect", y, f"{fmt(m['estimate'])} {fmt_ci(m.get('ci_lower'), m.get('ci_upper'))}",
                  weight="bold")
            _text(ax, trans, "weight", y, "100%" if row["label"] and not row["label"].startswith("Subtotal")
                  else "", weight="bold")
            cl, cu = m.get("ci_lower", m["estimate"]), m.get("ci_upper", m["estimate"])
            ax.add_patch(Polygon([(max(cl, lo), y), (m["estimate"], y + 0.38), (min(cu, hi), y),
                                  (m["estimate"], y - 0.38)], closed=True, color=COLOURS["pooled"], lw=0))
        elif kind == "pi":
            m = row["model"]
            _text(ax, trans, "study", y, row["label"])
            _text(ax, trans, "effect", y, fmt_ci(m["pi_lower"], m["pi_upper"]))
            ax.add_patch(Polygon([(max(m["pi_lower"], lo), y - 0.14), (min(m["pi_upper"], hi), y - 0.14),
                                  (min(m["pi_upper"], hi), y + 0.14), (max(m["pi_lower"], lo), y + 0.14)],
                                 closed=True, color=COLOURS["pi"], alpha=0.45, lw=0))
    ax.add_collection(LineCollection(segments, colors=COLOURS["text"], linewidths=0.8))
    if squares:
        ax.scatter([s[0] for s in squares], [s[1] for s in squares], s=sizes, marker="s",
                   color=COLOURS["point"], zorder=3, linewidths=0)
    for x, y, marker in clipped:
        ax.plot([x], [y], marker=marker, color=COLOURS["text"], markersize=4, clip_on=False)
    _draw_rob(fig, ax, trans, rows)


def _draw_rob(fig: Any, ax: Any, trans: Any, rows: Sequence[Row]) -> None:
    """Risk of bias per study as a coloured marker whose shape also encodes the level (colour-blind safe)."""
    x, _ = COLUMNS["rob"]
    for level, marker in ROB_MARK.items():
        ys = [-float(i) for i, row in enumerate(rows) if row["kind"] == "study" and row["data"].get("rob") == level]
        if ys:
            ax.scatter([x] * len(ys), ys, transform=trans, marker=marker, s=40, color=COLOURS[level],
                       linewidths=0, clip_on=False)


def _study_text(ax: Any, trans: Any, y: float, data: Row) -> None:
    """The text columns of one study row."""
    label = str(data.get("study") or data.get("trial") or "")
    if len(label) > LABEL_CHARS:
        label = label[: LABEL_CHARS - 1] + "…"
    _text(ax, trans, "study", y, label)
    _text(ax, trans, "n1", y, _int(data.get("n_arm1")))
    _text(ax, trans, "n2", y, _int(data.get("n_arm2")))
    _text(ax, trans, "effect", y, f"{fmt(data.get('yi'))} {fmt_ci(data.get('ci_lower'), data.get('ci_upper'))}")
    weight = data.get("weight")
    _text(ax, trans, "weight", y, f"{weight:.1f}%" if weight is not None else "–")


def _int(value: Any) -> str:
    if value is None:
        return "–"
    return str(int(round(float(value))))


def _text(ax: Any, trans: Any, column: str, y: float, text: str, **kwargs: Any) -> None:
    x, ha = COLUMNS[column]
    ax.text(x, y, text, transform=trans, ha=ha, va="center", parse_math=False, clip_on=False, **kwargs)


def _draw_header(fig: Any, y: float, title: str) -> None:
    """Column titles (and the figure title above them)."""
    heads = {"study": "Study", "n1": "N ther.", "n2": "N comp.", "effect": "g [95% CI]",
             "weight": "Weight", "rob": "RoB"}
    for column, text in heads.items():
        x, ha = COLUMNS[column]
        fig.text(x, y, text, ha=ha, va="bottom", fontweight="bold", fontsize=8)
    if title:
        fig.text(0.01, y + 0.2 / fig.get_figheight(), title, ha="left", va="bottom", fontsize=10,
                 fontweight="bold", parse_math=False)


def _draw_axis(
    ax: Any, xlim: tuple[float, float], xlabel: str, favours: tuple[str, str], n: int, pooled_estimate: float | None
) -> None:
    """The x axis with a line at no effect and the 'favours' labels; no y axis."""
    ax.set_xlim(*xlim)
    ax.set_ylim(-(n - 0.5), 0.5)
    ax.axvline(0.0, color=COLOURS["muted"], lw=0.7)
    if pooled_estimate is not None:
        ax.axvline(pooled_estimate, color=COLOURS["pooled"], lw=0.6, ls=":")
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=8, labelpad=1)
    for text, ha, dx in ((f"← {favours[0]}", "right", -4), (f"{favours[1]} →", "left", 4)):
        ax.annotate(text, xy=(0.0, 0.0), xycoords=("data", "axes fraction"), xytext=(dx, -28),
                    textcoords="offset points", ha=ha, va="top", fontsize=7, color=COLOURS["muted"])
    ax.patch.set_visible(False)


def _footer(pooled: Row | None, subgroup_test: Row | None) -> list[str]:
    """Heterogeneity and test statistics, as RevMan prints them under the plot."""
    lines: list[str] = []
    if pooled and pooled.get("estimate") is not None:
        tau2_ci = pooled.get("tau2_ci") or [None, None]
        i2_ci = pooled.get("I2_ci") or [None, None]
        lines.append(
            f"Heterogeneity: τ² = {fmt(pooled.get('tau2'), 3)} {fmt_ci(tau2_ci[0], tau2_ci[1], 3)}; "
            f"I² = {fmt(pooled.get('I2'), 1)}% {fmt_ci(i2_ci[0], i2_ci[1], 1)}; "
            f"Q = {fmt(pooled.get('Q'))}, df = {_int(pooled.get('Q_df'))}, {p_text(pooled.get('Q_p'))}"
        )
        df = pooled.get("df")
        stat = f"t({fmt(df, 0) if df is not None and float(df).is_integer() else fmt(df)})" if df is not None else "z"
        lines.append(
            f"Test for overall effect: {stat} = {fmt(pooled.get('statistic'))}, {p_text(pooled.get('p_value'))}"
            f"  ({pooled.get('estimator') or '–'}, {pooled.get('test') or '–'})"
        )
    lines.append("Risk of bias: + low, ● some concerns, × high")
    if subgroup_test:
        lines.append(
            f"Test for subgroup differences: Q = {fmt(subgroup_test.get('Q_between'))}, "
            f"df = {_int(subgroup_test.get('df'))}, {p_text(subgroup_test.get('p_value'))}"
        )
    return lines
