"""CHANGES.md: what changed between the previous report's results and this one.

Trials added, removed or edited (by the per-trial sha256 in ``inputs.trials``); cells added or removed;
per cell the change in g, its CI, tau^2 and I^2; and changes of conclusion: a CI that now crosses zero
(or no longer does) and a changed rank in the per-condition overview. Only compares numbers that are in
the two results documents.
"""

from __future__ import annotations

from typing import Any

from metapsych.report.markdown import md_escape, table
from metapsych.report.style import fmt, fmt_ci

TOLERANCE = 1e-9
TRACKED = ("estimate", "ci_lower", "ci_upper", "tau2", "I2")


def conclusion(model: dict[str, Any] | None) -> str:
    """'benefit', 'harm' or 'unclear' (CI includes zero) from a MODEL dict."""
    if not model or model.get("ci_lower") is None or model.get("ci_upper") is None:
        return "not estimable"
    if model["ci_lower"] > 0:
        return "benefit"
    if model["ci_upper"] < 0:
        return "harm"
    return "unclear"


def compute_changes(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A diff of two results documents (plain dict, sorted, JSON-safe)."""
    old_t = (previous.get("inputs") or {}).get("trials") or {}
    new_t = (current.get("inputs") or {}).get("trials") or {}
    old_cells = {c["id"]: c for c in previous.get("cells", [])}
    new_cells = {c["id"]: c for c in current.get("cells", [])}
    old_rank, new_rank = _ranks(previous), _ranks(current)
    cells = []
    for cell_id in sorted(set(old_cells) & set(new_cells)):
        entry = _cell_change(cell_id, old_cells[cell_id].get("main"), new_cells[cell_id].get("main"),
                             old_rank.get(cell_id), new_rank.get(cell_id))
        if entry:
            cells.append(entry)
    return {
        "trials_added": sorted(set(new_t) - set(old_t)),
        "trials_removed": sorted(set(old_t) - set(new_t)),
        "trials_edited": sorted(t for t in set(old_t) & set(new_t) if old_t[t] != new_t[t]),
        "cells_added": sorted(set(new_cells) - set(old_cells)),
        "cells_removed": sorted(set(old_cells) - set(new_cells)),
        "cells_changed": cells,
    }


def _ranks(results: dict[str, Any]) -> dict[str, int]:
    return {row["cell"]: row["rank"] for rows in (results.get("overview") or {}).values() for row in rows
            if row.get("cell") is not None and row.get("rank") is not None}


def _cell_change(cell_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None,
                 old_rank: int | None, new_rank: int | None) -> dict[str, Any] | None:
    old, new = old or {}, new or {}
    moved = any(_differs(old.get(k), new.get(k)) for k in TRACKED) or old.get("k") != new.get("k")
    before, after = conclusion(old), conclusion(new)
    if not moved and before == after and old_rank == new_rank:
        return None
    return {"cell": cell_id, "old": {k: old.get(k) for k in ("k",) + TRACKED},
            "new": {k: new.get(k) for k in ("k",) + TRACKED},
            "conclusion": [before, after] if before != after else None,
            "rank": [old_rank, new_rank] if old_rank != new_rank else None}


def _differs(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is not b
    return abs(a - b) > TOLERANCE * max(1.0, abs(a), abs(b))


def render_changes(changes: dict[str, Any] | None) -> str:
    """CHANGES.md text; ``None`` means there is no previous report to compare with."""
    out = ["# Changes since the previous report", ""]
    if changes is None:
        return "\n".join(out + ["This is the first report: there is no previous report to compare with.", ""])
    flips = [c for c in changes["cells_changed"] if c["conclusion"]]
    reranked = [c for c in changes["cells_changed"] if c["rank"]]
    summary = [f"{len(changes[k])} {label}" for k, label in (
        ("trials_added", "trials added"), ("trials_removed", "trials removed"), ("trials_edited", "trials edited"),
        ("cells_changed", "cells changed"))]
    out += [", ".join(summary) + f"; {len(flips)} conclusions and {len(reranked)} rankings changed.", ""]
    for key, title in (("trials_added", "Trials added"), ("trials_removed", "Trials removed"),
                       ("trials_edited", "Trials edited"), ("cells_added", "New cells"),
                       ("cells_removed", "Cells removed")):
        if changes[key]:
            out += [f"## {title}", ""] + [f"- {md_escape(x)}" for x in changes[key]] + [""]
    if flips or reranked:
        out += ["## Conclusion changes", ""]
        out += [f"- {md_escape(c['cell'])}: {c['conclusion'][0]} → {c['conclusion'][1]}" for c in flips]
        out += [f"- {md_escape(c['cell'])}: rank {c['rank'][0] or '–'} → {c['rank'][1] or '–'}" for c in reranked]
        out.append("")
    if changes["cells_changed"]:
        rows = [[md_escape(c["cell"]), f"{c['old']['k'] or '–'} → {c['new']['k'] or '–'}",
                 f"{fmt(c['old']['estimate'])} → {fmt(c['new']['estimate'])}",
                 f"{_delta(c, 'estimate')}",
                 f"{fmt_ci(c['old']['ci_lower'], c['old']['ci_upper'])} → "
                 f"{fmt_ci(c['new']['ci_lower'], c['new']['ci_upper'])}",
                 f"{fmt(c['old']['tau2'], 3)} → {fmt(c['new']['tau2'], 3)}",
                 f"{fmt(c['old']['I2'], 1)} → {fmt(c['new']['I2'], 1)}"] for c in changes["cells_changed"]]
        out += ["## Cells whose results changed", "",
                table(["cell", "k", "g", "Δg", "95% CI", "τ²", "I² %"], rows, "lrrrrrr"), ""]
    if not any(changes[k] for k in changes):
        out += ["Nothing changed.", ""]
    return "\n".join(out)


def _delta(change: dict[str, Any], key: str) -> str:
    a, b = change["old"][key], change["new"][key]
    return "–" if a is None or b is None else f"{b - a:+.2f}"
