"""Network figures from the network payload: the network graph and the forest plot against the reference.

Both return (svg, png) bytes and are deterministic: treatments sit on a circle in sorted order (no
random layout), and export goes through ``style.figure_bytes`` (fixed svg.hashsalt, no dates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from metapsych.report.style import COLOURS, ROW_HEIGHT_IN, figure_bytes, fmt, fmt_ci, new_figure

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


def network_graph(nodes: Sequence[Row], edges: Sequence[Row], *, title: str = "") -> tuple[bytes, bytes]:
    """Network graph: node area by participants (else trials), edge width and label by number of trials."""
    fig = new_figure(5.6, 5.6)
    ax = fig.add_axes((0.05, 0.05, 0.9, 0.86 if title else 0.9))
    ax.set_axis_off()
    ax.set_aspect("equal")
    pos = circle_layout([n["treatment"] for n in nodes])
    top = max([int(e["n_trials"]) for e in edges] + [1])
    for e in sorted(edges, key=lambda e: (e["treat1"], e["treat2"])):
        (x1, y1), (x2, y2) = pos[e["treat1"]], pos[e["treat2"]]
        ax.plot([x1, x2], [y1, y2], color=COLOURS["point"], alpha=0.55, lw=1.0 + 7.0 * int(e["n_trials"]) / top,
                solid_capstyle="round", zorder=1)
        ax.text((x1 + x2) / 2, (y1 + y2) / 2, str(e["n_trials"]), fontsize=7, color=COLOURS["text"],
                ha="center", va="center", zorder=3,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    sizes = _node_sizes(nodes)
    names = sorted(pos)
    ax.scatter([pos[n][0] for n in names], [pos[n][1] for n in names], s=[sizes[n] for n in names],
               color=COLOURS["pooled"], edgecolors="white", linewidths=1.0, zorder=2)
    for name in names:
        x, y = pos[name]
        ax.text(1.3 * x, 1.3 * y, name, ha="center", va="center", fontsize=9, parse_math=False)
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return figure_bytes(fig)


def network_forest(estimates: Mapping[str, Row], reference: str, *, title: str = "",
                   xlabel: str = "Effect versus reference") -> tuple[bytes, bytes]:
    """Forest plot of every treatment versus the reference (estimates as in the network payload)."""
    names = sorted(estimates, key=lambda t: (-(estimates[t].get("estimate") or 0.0), t))
    height = 1.1 + ROW_HEIGHT_IN * max(len(names), 1)
    fig = new_figure(7.0, height)
    ax = fig.add_axes((0.26, 0.75 / height, 0.44, 1.0 - 1.1 / height))
    for i, name in enumerate(names):
        e = estimates[name]
        y = len(names) - i
        if e.get("ci_lower") is not None and e.get("ci_upper") is not None:
            ax.plot([e["ci_lower"], e["ci_upper"]], [y, y], color=COLOURS["point"], lw=1.2)
        ax.plot([e["estimate"]], [y], marker="s", color=COLOURS["point"], ms=5)
        ax.text(-0.03, y, name, transform=ax.get_yaxis_transform(), fontsize=8, ha="right", va="center",
                parse_math=False)
        ax.annotate(f"{fmt(e['estimate'])} {fmt_ci(e.get('ci_lower'), e.get('ci_upper'))}", (1.02, y),
                    xycoords=("axes fraction", "data"), fontsize=8, va="center")
    ax.axvline(0.0, color=COLOURS["muted"], lw=0.7)
    ax.set_ylim(0.4, len(names) + 0.6)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_xlabel(f"{xlabel} ({reference})")
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    return figure_bytes(fig)
