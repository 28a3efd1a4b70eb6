"""The smaller report figures: bubble (meta-regression), Baujat, overview ranking, risk-of-bias summary and
cumulative forest plot. Each takes plain data from the results document and returns (svg, png) bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from metapsych.report.forest import interval_plot
from metapsych.report.style import COLOURS, fmt, p_text
from metapsych.report.vector import Canvas, Frame

Row = dict[str, Any]
ROB_LEVELS = (("low", "Low"), ("some", "Some concerns"), ("high", "High"), ("unclear", "Not assessed"))


def bubble_plot(points: Sequence[Row], *, moderator: str, coefficients: Mapping[str, Any] | None = None,
                test: Row | None = None, title: str = "") -> tuple[bytes, bytes]:
    """Effect sizes against a moderator, bubble area by inverse variance, with the fitted line (numeric
    moderators) or one column per level (categorical moderators)."""
    pts = [p for p in points if p.get("x") is not None and _num(p.get("yi")) and (p.get("vi") or 0) > 0]
    categorical = any(isinstance(p["x"], str) for p in pts)
    levels = sorted({str(p["x"]) for p in pts}) if categorical else []
    xs = [float(levels.index(str(p["x"]))) if categorical else float(p["x"]) for p in pts]
    line = None if categorical else _line(coefficients or {}, moderator)
    xlo, xhi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    pad = max((xhi - xlo) * 0.05, 0.5 if categorical else 1e-9)
    ys = [p["yi"] for p in pts] + [0.0]
    if line is not None:
        ys += [line[0] + line[1] * xlo, line[0] + line[1] * xhi]
    ypad = max((max(ys) - min(ys)) * 0.06, 0.05)
    canvas = Canvas(620.0, 440.0)
    frame = Frame(80.0, 46.0, 510.0, 330.0, (xlo - pad, xhi + pad), (min(ys) - ypad, max(ys) + ypad))
    canvas.text(10, 14, title, size=12, bold=True)
    if test and test.get("QM") is not None:
        canvas.text(10, 32, f"QM({fmt(test.get('QM_df'), 0)}) = {fmt(test['QM'])}, {p_text(test.get('QM_p'))}",
                    size=11)
    canvas.line(frame.left, frame.y(0.0), frame.left + frame.width, frame.y(0.0), COLOURS["muted"], 1)
    wmax = max([1.0 / p["vi"] for p in pts] + [1e-12])
    for x, p in sorted(zip(xs, pts), key=lambda xp: -1.0 / xp[1]["vi"]):  # big bubbles first, small on top
        canvas.circle(frame.x(x), frame.y(p["yi"]), 2.5 + 9.0 * math.sqrt(1.0 / p["vi"] / wmax), COLOURS["point"],
                      stroke="#ffffff", opacity=0.45)
    if line is not None:
        canvas.line(frame.x(xlo), frame.y(line[0] + line[1] * xlo), frame.x(xhi), frame.y(line[0] + line[1] * xhi),
                    COLOURS["pooled"], 2)
    ticks = [(float(i), level) for i, level in enumerate(levels)] if categorical else None
    frame.axes(canvas, moderator, "Hedges' g", xticks=ticks)
    return canvas.svg(), canvas.png()


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
    xmax = max([p["x"] for p in pts] + [1e-12])
    ymax = max([p["y"] for p in pts] + [1e-12])
    canvas = Canvas(620.0, 440.0)
    frame = Frame(80.0, 36.0, 500.0, 340.0, (0.0, xmax * 1.1), (0.0, ymax * 1.1))
    if title:
        canvas.text(10, 14, title, size=12, bold=True)
    for p in pts:
        canvas.circle(frame.x(p["x"]), frame.y(p["y"]), 3.5, COLOURS["point"])
    ranked = sorted(pts, key=lambda p: (-(p["x"] / xmax + p["y"] / ymax), str(p.get("study"))))
    for p in ranked[:label_top]:
        right_half = p["x"] > xmax * 0.6
        canvas.text(frame.x(p["x"]) + (-6 if right_half else 6), frame.y(p["y"]) - 8,
                    str(p.get("study") or p.get("trial") or ""), size=10, anchor="end" if right_half else "start")
    frame.axes(canvas, "Contribution to overall heterogeneity (Q)", "Influence on the pooled result")
    return canvas.svg(), canvas.png()


def ranking_plot(rows: Sequence[Row], *, title: str = "") -> tuple[bytes, bytes]:
    """Comparative-effectiveness overview: one line per cell, ranked by pooled g, with 95% CIs.

    Rows carry label, k, estimate, ci_lower, ci_upper and ``flag`` (True when a sensitivity model changes
    the conclusion; drawn as an open marker); rows with ``header`` start a group (comparator, time).
    """
    return interval_plot([r if r.get("header") else
                          {**r, "label": f"{r['label']} (k={r.get('k', '–')})", "open": bool(r.get("flag"))}
                          for r in rows], title=title, xlabel="Pooled Hedges' g [95% CI]",
                         note="Open marker: the conclusion changes under a sensitivity model.")


def rob_summary_plot(studies: Sequence[Row], *, title: str = "Risk of bias (share of the pooled weight)"
                     ) -> tuple[bytes, bytes]:
    """One horizontal 100% bar: the share of the pooled weight with low / some / high risk of bias."""
    shares = rob_shares(studies)
    canvas = Canvas(600.0, 84.0)
    canvas.text(10, 12, title, size=11, bold=True)
    left, width = 10.0, 580.0
    x = left
    for level, _ in ROB_LEVELS:
        w = width * shares[level] / 100.0
        if w > 0:
            canvas.rect(x, 26, w, 24, COLOURS[level])
        x += w
    x = left
    for level, label in ROB_LEVELS:
        if shares[level] > 0:
            canvas.rect(x, 62, 10, 10, COLOURS[level])
            text = f"{label} {shares[level]:.0f}%"
            canvas.text(x + 14, 67, text, size=10)
            x += 24 + 6.5 * len(text)
    return canvas.svg(), canvas.png()


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
    labelled = []
    for r in rows:
        study, year = str(r.get("study") or ""), r.get("year")
        suffix = f" ({year})" if year is not None and str(year) not in study else ""
        labelled.append({**r, "label": f"+ {study}{suffix}"})
    return interval_plot(labelled, title=title, xlabel="Cumulative pooled Hedges' g [95% CI]")
