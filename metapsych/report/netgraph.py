"""Network figures from the network payload: the network graph and the forest plot against the reference.

Both return (svg, png) bytes and are deterministic: treatments sit on a circle in sorted order (no
random layout). Both are drawn on the ``vector.Canvas`` (no matplotlib: importing it costs about a second).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from metapsych.report.forest import interval_plot
from metapsych.report.style import COLOURS

Row = Mapping[str, Any]


def circle_layout(names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Treatments on the unit circle in sorted order, the first at the top, going clockwise."""
    ordered = sorted(names)
    n = len(ordered)
    return {name: (math.sin(2 * math.pi * i / n), math.cos(2 * math.pi * i / n)) for i, name in enumerate(ordered)}


def _node_sizes(nodes: Sequence[Row]) -> dict[str, float]:
    """Marker areas (points^2) proportional to participants (or trials when participants are missing)."""
    use_n = all(isinstance(n.get("n_participants"), (int, float)) and n["n_participants"] > 0 for n in nodes)
    raw = {n["treatment"]: float(n["n_participants"] if use_n else n["n_trials"]) for n in nodes}
    top = max(raw.values()) if raw else 1.0
    return {name: 150.0 + 1350.0 * value / top for name, value in raw.items()}


GRAPH_PX = 540.0           # the square canvas (5.6 in at 96 dpi)
PX_PER_PT = 96.0 / 72.0
EDGE_OPACITY = 0.55        # edges are drawn in the point colour blended with white by this much


def network_graph(nodes: Sequence[Row], edges: Sequence[Row], *, title: str = "") -> tuple[bytes, bytes]:
    """Network graph: node area by participants (else trials), edge width and label by number of trials."""
    from metapsych.report.vector import Canvas, Frame

    canvas = Canvas(GRAPH_PX, GRAPH_PX)
    top_px = 40.0 if title else 20.0
    side = GRAPH_PX - top_px - 20.0
    frame = Frame((GRAPH_PX - side) / 2, top_px, side, side, (-1.5, 1.5), (-1.5, 1.5))
    if title:
        canvas.text(10, 16, title, size=13, bold=True)
    pos = circle_layout([n["treatment"] for n in nodes])
    top = max([int(e["n_trials"]) for e in edges] + [1])
    edge_colour = _blend(COLOURS["point"], EDGE_OPACITY)
    ordered = sorted(edges, key=lambda e: (e["treat1"], e["treat2"]))
    for e in ordered:
        (x1, y1), (x2, y2) = pos[e["treat1"]], pos[e["treat2"]]
        canvas.line(frame.x(x1), frame.y(y1), frame.x(x2), frame.y(y2), edge_colour,
                    (1.0 + 7.0 * int(e["n_trials"]) / top) * PX_PER_PT)
    sizes = _node_sizes(nodes)
    for name in sorted(pos):
        x, y = pos[name]
        radius = math.sqrt(sizes[name] / math.pi) * PX_PER_PT
        canvas.circle(frame.x(x), frame.y(y), radius, COLOURS["pooled"], stroke="#ffffff")
    for e in ordered:  # labels above edges and nodes, on a light box
        (x1, y1), (x2, y2) = pos[e["treat1"]], pos[e["treat2"]]
        cx, cy, label = frame.x((x1 + x2) / 2), frame.y((y1 + y2) / 2), str(e["n_trials"])
        width = 0.62 * 9.0 * len(label) + 6.0
        canvas.rect(cx - width / 2, cy - 7.0, width, 14.0, "#ffffff", opacity=0.8)
        canvas.text(cx, cy, label, size=9, anchor="middle", colour=COLOURS["text"])
    for name in sorted(pos):
        x, y = pos[name]
        canvas.text(frame.x(1.3 * x), frame.y(1.3 * y), name, size=12, anchor="middle", colour=COLOURS["text"])
    return canvas.svg(), canvas.png()


def _blend(colour: str, opacity: float) -> str:
    """``colour`` at ``opacity`` over white, as an opaque hex colour."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - opacity * (255 - c)):02x}" for c in rgb)


def network_forest(estimates: Mapping[str, Row], reference: str, *, title: str = "",
                   xlabel: str = "Effect versus reference") -> tuple[bytes, bytes]:
    """Forest plot of every treatment versus the reference (estimates as in the network payload), best first."""
    names = sorted((t for t in estimates if t != reference),
                   key=lambda t: (-(estimates[t].get("estimate") or 0.0), t))
    rows = [{"label": name, **{k: estimates[name].get(k) for k in ("estimate", "ci_lower", "ci_upper")}}
            for name in names]
    return interval_plot(rows, title=title, xlabel=f"{xlabel} ({reference}) [95% CI]")
