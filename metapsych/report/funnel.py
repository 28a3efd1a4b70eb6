"""Contour-enhanced funnel plot (as metafor's ``funnel(..., level = c(90, 95, 99), refline = 0)``).

Shaded regions show where a study's two-sided p-value (against 0) falls: > 0.10, 0.05-0.10, 0.01-0.05,
< 0.01. Studies missing from the white region's edges are what small-study effects look like. Points
imputed by trim-and-fill are drawn as open circles when the results document provides them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from metapsych.report.style import COLOURS, figure_bytes, new_figure

Row = dict[str, Any]

# Two-sided normal quantiles for p = 0.01, 0.05, 0.10 (fixed constants of the plot, not statistics), each with
# the colour of the band just inside it; outside the widest contour p < 0.01.
OUTSIDE = ("#eeeeee", "p < 0.01")
BANDS = ((2.5758293035489004, "#cfcfcf", "0.01 < p < 0.05"), (1.959963984540054, "#a0a0a0", "0.05 < p < 0.10"),
         (1.6448536269514722, "#ffffff", "p > 0.10"))


def _se(point: Row) -> float | None:
    if point.get("se") is not None:
        return float(point["se"])
    if point.get("vi") is not None and point["vi"] >= 0:
        return math.sqrt(point["vi"])
    return None


def funnel_plot(
    studies: Sequence[Row], pooled: Row | None, *, filled: Sequence[Row] = (), title: str = "",
    xlabel: str = "Hedges' g",
) -> tuple[bytes, bytes]:
    """Draw the funnel; ``studies`` need yi and se (or vi), ``filled`` are trim-and-fill points."""
    observed = [(s["yi"], se) for s in studies if s.get("yi") is not None and (se := _se(s)) is not None]
    imputed = [(s["yi"], se) for s in filled if s.get("yi") is not None and (se := _se(s)) is not None]
    se_max = max([se for _, se in observed + imputed] + [0.1]) * 1.08
    xs = [y for y, _ in observed + imputed] + [0.0]
    half = max(max(abs(x) for x in xs), BANDS[0][0] * se_max) * 1.05
    fig = new_figure(6.0, 4.6)
    ax = fig.add_axes((0.12, 0.12, 0.84, 0.78))
    _paint_contours(ax, se_max)
    if pooled and pooled.get("estimate") is not None:
        est = pooled["estimate"]
        ax.plot([est, est], [0, se_max], color=COLOURS["pooled"], lw=0.9)
        ax.plot([est - BANDS[1][0] * se_max, est, est + BANDS[1][0] * se_max], [se_max, 0, se_max], color=COLOURS["pooled"],
                lw=0.6, ls="--")
    ax.scatter([x for x, _ in observed], [y for _, y in observed], s=18, color=COLOURS["point"], zorder=3,
               linewidths=0, label="studies")
    if imputed:
        ax.scatter([x for x, _ in imputed], [y for _, y in imputed], s=18, facecolor="white",
                   edgecolor=COLOURS["point"], zorder=3, linewidths=0.8, label="filled (trim-and-fill)")
    ax.set_xlim(-half, half)
    ax.set_ylim(se_max, 0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Standard error")
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    return figure_bytes(fig)


def _paint_contours(ax: Any, se_max: float) -> None:
    """Paint the p-value bands from the outside in, with legend entries (significance against 0)."""
    from matplotlib.patches import Patch, Polygon

    ax.set_facecolor(OUTSIDE[0])
    handles = [Patch(facecolor=OUTSIDE[0], edgecolor="#888888", lw=0.4, label=OUTSIDE[1])]
    for z, colour, label in BANDS:
        ax.add_patch(Polygon([(0, 0), (z * se_max, se_max), (-z * se_max, se_max)], facecolor=colour,
                             edgecolor="#888888", lw=0.4, zorder=0))
        handles.append(Patch(facecolor=colour, edgecolor="#888888", lw=0.4, label=label))
    ax.add_artist(ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.9, title="p (vs 0)",
                            title_fontsize=7))
