"""Contour-enhanced funnel plot (as metafor's ``funnel(..., level = c(90, 95, 99), refline = 0)``).

Shaded regions show where a study's two-sided p-value (against 0) falls: > 0.10, 0.05-0.10, 0.01-0.05,
< 0.01. Studies missing from the white region's edges are what small-study effects look like. Points
imputed by trim-and-fill are drawn as open circles when the results document provides them. Drawn on the
vector canvas (one drawing, SVG and PNG).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from metapsych.report.style import COLOURS
from metapsych.report.vector import Canvas, Frame

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
    se_max = max([se for _, se in observed + imputed] + [0.05]) * 1.08
    half = max([abs(x) for x, _ in observed + imputed] + [BANDS[0][0] * se_max]) * 1.05
    canvas = Canvas(620.0, 470.0)
    frame = Frame(70.0, 40.0, 520.0, 360.0, (-half, half), (0.0, se_max), y_down=True)
    if title:
        canvas.text(10, 14, title, size=12, bold=True)
    canvas.rect(frame.left, frame.top, frame.width, frame.height, OUTSIDE[0])
    apex = (frame.x(0.0), frame.y(0.0))
    for z, colour, _ in BANDS:
        canvas.polygon([apex, (frame.x(z * se_max), frame.y(se_max)), (frame.x(-z * se_max), frame.y(se_max))], colour)
    if pooled and pooled.get("estimate") is not None:
        est = pooled["estimate"]
        canvas.line(frame.x(est), frame.y(0.0), frame.x(est), frame.y(se_max), COLOURS["pooled"], 1)
        for sign in (-1, 1):
            x_end = min(max(est + sign * BANDS[1][0] * se_max, -half), half)
            y_end = abs(x_end - est) / BANDS[1][0]
            canvas.line(frame.x(est), frame.y(0.0), frame.x(x_end), frame.y(y_end), COLOURS["pooled"], 1, dash=True)
    for x, se in observed:
        canvas.circle(frame.x(x), frame.y(se), 3.5, COLOURS["point"])
    for x, se in imputed:
        canvas.circle(frame.x(x), frame.y(se), 3.5, "#ffffff", stroke=COLOURS["point"])
    frame.axes(canvas, xlabel, "Standard error")
    _legend(canvas, bool(imputed))
    return canvas.svg(), canvas.png()


def _legend(canvas: Canvas, with_filled: bool) -> None:
    """Band colours (p against 0) and point symbols, in one row under the axis."""
    x, y = 70.0, 452.0
    for colour, label in [OUTSIDE] + [(c, lab) for _, c, lab in BANDS]:
        canvas.rect(x, y - 5, 10, 10, colour)
        for x1, y1, x2, y2 in ((x, y - 5, x + 10, y - 5), (x + 10, y - 5, x + 10, y + 5), (x + 10, y + 5, x, y + 5),
                               (x, y + 5, x, y - 5)):
            canvas.line(x1, y1, x2, y2, "#888888", 0.5)
        canvas.text(x + 14, y, label, size=10)
        x += 26 + 6.2 * len(label)
    canvas.circle(x + 4, y, 3.5, COLOURS["point"])
    canvas.text(x + 11, y, "study", size=10)
    if with_filled:
        canvas.circle(x + 58, y, 3.5, "#ffffff", stroke=COLOURS["point"])
        canvas.text(x + 65, y, "filled (trim-and-fill)", size=10)
