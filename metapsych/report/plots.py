"""The smaller report figures: bubble (meta-regression), Baujat, overview ranking, risk-of-bias summary and
cumulative forest plot. Each takes plain data from the results document and returns (svg, png) bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from metapsych.report.style import COLOURS, ROW_HEIGHT_IN, figure_bytes, fmt, new_figure, p_text

Row = dict[str, Any]
ROB_LEVELS = (("low", "Low"), ("some", "Some concerns"), ("high", "High"), ("unclear", "Not assessed"))


def bubble_plot(points: Sequence[Row], *, moderator: str, coefficients: Mapping[str, Any] | None = None,
                test: Row | None = None, title: str = "") -> tuple[bytes, bytes]:
    """Effect sizes against a numeric moderator, bubble area by inverse variance, with the fitted line."""
    pts = [p for p in points if _num(p.get("x")) and _num(p.get("yi")) and (p.get("vi") or 0) > 0]
    fig = new_figure(6.0, 4.2)
    ax = fig.add_axes((0.12, 0.13, 0.84, 0.75))
    if pts:
        w = [1.0 / p["vi"] for p in pts]
        wmax = max(w)
        ax.scatter([p["x"] for p in pts], [p["yi"] for p in pts], s=[10 + 140 * v / wmax for v in w],
                   color=COLOURS["point"], alpha=0.45, linewidths=0.3, edgecolors="white")
        line = _line(coefficients or {}, moderator)
        if line is not None:
            lo, hi = min(p["x"] for p in pts), max(p["x"] for p in pts)
            ax.plot([lo, hi], [line[0] + line[1] * lo, line[0] + line[1] * hi], color=COLOURS["pooled"], lw=1.2)
    ax.axhline(0.0, color=COLOURS["muted"], lw=0.6)
    ax.set_xlabel(moderator)
    ax.set_ylabel("Hedges' g")
    subtitle = ""
    if test and test.get("QM") is not None:
        subtitle = f"QM({fmt(test.get('QM_df'), 0)}) = {fmt(test['QM'])}, {p_text(test.get('QM_p'))}"
    ax.set_title(f"{title}\n{subtitle}" if subtitle else title, fontsize=9, loc="left")
    return figure_bytes(fig)


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _coef(value: Any) -> float | None:
    if isinstance(value, Mapping):
        value = value.get("estimate")
    return float(value) if _num(value) else None


def _line(coefficients: Mapping[str, Any], moderator: str) -> tuple[float, float] | None:
    """(intercept, slope) from the coefficients mapping, if both are there."""
    intercept = next((_coef(coefficients[k]) for k in ("intrcpt", "intercept") if k in coefficients), None)
    slope = _coef(coefficients.get(moderator))
    if slope is None:
        others = [k for k in coefficients if k not in ("intrcpt", "intercept")]
        slope = _coef(coefficients[others[0]]) if len(others) == 1 else None
    return None if intercept is None or slope is None else (intercept, slope)


def baujat_plot(points: Sequence[Row], *, title: str = "", label_top: int = 5) -> tuple[bytes, bytes]:
    """Contribution to heterogeneity (x) against influence on the pooled result (y); the most extreme
    studies are labelled."""
    pts = [p for p in points if _num(p.get("x")) and _num(p.get("y"))]
    fig = new_figure(6.0, 4.2)
    ax = fig.add_axes((0.12, 0.13, 0.84, 0.78))
    ax.scatter([p["x"] for p in pts], [p["y"] for p in pts], s=16, color=COLOURS["point"], linewidths=0)
    xmax = max([p["x"] for p in pts] + [1e-12])
    ymax = max([p["y"] for p in pts] + [1e-12])
    ranked = sorted(pts, key=lambda p: (-(p["x"] / xmax + p["y"] / ymax), str(p.get("study"))))
    for p in ranked[:label_top]:
        ax.annotate(str(p.get("study") or p.get("trial") or ""), (p["x"], p["y"]), xytext=(4, 3),
                    textcoords="offset points", fontsize=7, parse_math=False)
    ax.margins(x=0.18, y=0.08)
    ax.set_xlabel("Contribution to overall heterogeneity (Q)")
    ax.set_ylabel("Influence on the pooled result")
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    return figure_bytes(fig)


def ranking_plot(rows: Sequence[Row], *, title: str = "") -> tuple[bytes, bytes]:
    """Comparative-effectiveness overview: one line per cell, ranked by pooled g, with 95% CIs.

    Rows carry label, k, estimate, ci_lower, ci_upper and ``flag`` (True when a sensitivity model changes
    the conclusion; drawn as an open marker).
    """
    n = max(len(rows), 1)
    height = 0.9 + n * ROW_HEIGHT_IN
    fig = new_figure(8.0, height)
    ax = fig.add_axes((0.42, 0.55 / height, 0.54, (n * ROW_HEIGHT_IN) / height))
    ys = [-float(i) for i in range(len(rows))]
    for y, row in zip(ys, rows):
        if row.get("ci_lower") is not None and row.get("ci_upper") is not None:
            ax.plot([row["ci_lower"], row["ci_upper"]], [y, y], color=COLOURS["text"], lw=0.9)
        ax.scatter([row["estimate"]], [y], s=28, marker="D", zorder=3, linewidths=1.0,
                   facecolor="white" if row.get("flag") else COLOURS["point"], edgecolor=COLOURS["point"])
    ax.axvline(0.0, color=COLOURS["muted"], lw=0.6)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{r['label']} (k={r.get('k', '–')})" for r in rows], fontsize=8)
    for tick in ax.get_yticklabels():
        tick.set_parse_math(False)
    ax.set_ylim(-(n - 0.5), 0.5)
    ax.set_xlabel("Pooled Hedges' g [95% CI]; open marker: conclusion changes under a sensitivity model",
                  fontsize=7)
    if title:
        fig.text(0.01, 1 - 0.08 / height, title, fontsize=10, fontweight="bold", va="top", parse_math=False)
    return figure_bytes(fig)


def rob_summary_plot(studies: Sequence[Row], *, title: str = "Risk of bias (weighted by study weight)"
                     ) -> tuple[bytes, bytes]:
    """One horizontal 100% bar: the share of the pooled weight with low / some / high risk of bias."""
    shares = rob_shares(studies)
    fig = new_figure(6.0, 1.3)
    ax = fig.add_axes((0.03, 0.42, 0.94, 0.3))
    left = 0.0
    for level, label in ROB_LEVELS:
        share = shares[level]
        if share <= 0:
            continue
        ax.barh([0], [share], left=[left], color=COLOURS[level], height=0.8, label=f"{label} {share:.0f}%")
        left += share
    ax.set_xlim(0, 100)
    ax.set_yticks([])
    ax.set_xticks([])
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(title, fontsize=8, loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=4, fontsize=7, frameon=False)
    return figure_bytes(fig)


def rob_shares(studies: Sequence[Row]) -> dict[str, float]:
    """Percent of the total weight per risk-of-bias level (unweighted if no weights are given)."""
    totals = {level: 0.0 for level, _ in ROB_LEVELS}
    for s in studies:
        level = s.get("rob") if s.get("rob") in totals else "unclear"
        totals[level] += s.get("weight") if _num(s.get("weight")) else 1.0
    whole = sum(totals.values()) or 1.0
    return {level: 100.0 * v / whole for level, v in totals.items()}


def cumulative_plot(rows: Sequence[Row], *, title: str = "") -> tuple[bytes, bytes]:
    """Cumulative forest plot: the pooled estimate as each study is added in order of publication year."""
    n = max(len(rows), 1)
    height = 0.85 + n * ROW_HEIGHT_IN
    fig = new_figure(8.0, height)
    ax = fig.add_axes((0.36, 0.5 / height, 0.6, (n * ROW_HEIGHT_IN) / height))
    ys = [-float(i) for i in range(len(rows))]
    for y, row in zip(ys, rows):
        if row.get("ci_lower") is not None and row.get("ci_upper") is not None:
            ax.plot([row["ci_lower"], row["ci_upper"]], [y, y], color=COLOURS["text"], lw=0.8)
        if row.get("estimate") is not None:
            ax.scatter([row["estimate"]], [y], s=14, marker="s", color=COLOURS["point"], zorder=3, linewidths=0)
    ax.axvline(0.0, color=COLOURS["muted"], lw=0.6)
    ax.set_yticks(ys)
    labels = [f"+ {r.get('study') or ''}" + (f" ({r['year']})" if r.get("year") and str(r['year']) not in
                                             str(r.get("study")) else "") for r in rows]
    ax.set_yticklabels(labels, fontsize=7)
    for tick in ax.get_yticklabels():
        tick.set_parse_math(False)
    ax.set_ylim(-(n - 0.5), 0.5)
    ax.set_xlabel("Cumulative pooled Hedges' g [95% CI]", fontsize=8)
    if title:
        fig.text(0.01, 1 - 0.06 / height, title, fontsize=9, fontweight="bold", va="top", parse_math=False)
    return figure_bytes(fig)
