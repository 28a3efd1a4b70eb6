"""CHANGES.md: what changed between the previous report's results and this one.

The comparison itself is ``metapsych.analysis.diff.diff_results`` (shared with ``metapsych diff``), made by
the caller; this module renders it for the report, escaping every data string (trial labels come from the trial files):
trials added, removed or edited, cells added or removed, per cell the change in k, g, its CI, tau^2 and
I^2, and changes of conclusion (a CI that now includes or excludes zero, a changed rank).
"""

from __future__ import annotations

from typing import Any

from metapsych.report.markdown import md_escape, table
from metapsych.report.style import fmt, fmt_ci


def conclusion(model: dict[str, Any] | None) -> str:
    """'benefit', 'harm' or 'unclear' (CI includes zero) from a MODEL dict; the report's flag rule."""
    if not model or model.get("ci_lower") is None or model.get("ci_upper") is None:
        return "not estimable"
    if model["ci_lower"] > 0:
        return "benefit"
    if model["ci_upper"] < 0:
        return "harm"
    return "unclear"


def changes_markdown(diff: dict[str, Any] | None) -> str:
    """CHANGES.md text from a ``diff_results`` dict; None means this is the first report."""
    if diff is None:
        return "# Changes since the previous report\n\nThis is the first report: there is no previous report " \
               "to compare with.\n"
    return render_diff(diff)


def render_diff(diff: dict[str, Any]) -> str:
    """Render a ``diff_results`` dict as Markdown with escaped data strings."""
    out = ["# Changes since the previous report", ""]
    if diff.get("unchanged"):
        return "\n".join(out + ["Nothing changed.", ""])
    trials, cells = diff["trials"], diff["cells"]
    counts = [f"{len(trials[k])} trials {k}" for k in ("added", "removed", "edited")]
    out += [", ".join(counts) + f"; {len(cells['changed'])} cells changed, {len(diff['conclusions'])} "
            f"conclusions and {len(diff['rank_changes'])} rankings changed.", ""]
    if diff.get("config_changed"):
        out += ["The analysis configuration changed.", ""]
    version = diff.get("version") or {}
    if version.get("old") != version.get("new"):
        out += [f"metapsych {md_escape(version.get('old'))} → {md_escape(version.get('new'))}.", ""]
    for key in ("added", "removed", "edited"):
        if trials[key]:
            out += [f"## Trials {key}", ""]
            out += [f"- {md_escape(t['trial'])}" + (f" ({md_escape(t['study'])})" if t.get("study") else "")
                    for t in trials[key]] + [""]
    if diff["conclusions"]:
        out += ["## Changed conclusions", ""]
        out += [f"- {md_escape(c['cell'])}: {md_escape(c['conclusion'])}" for c in diff["conclusions"]] + [""]
    if diff["rank_changes"]:
        out += ["## Ranking changes", ""]
        out += [f"- {md_escape(r['condition'])}, vs {md_escape(r['comparator'])} ({md_escape(r['time'])}): "
                f"{md_escape(r['approach'])} rank {r['old_rank']} → {r['new_rank']}" for r in diff["rank_changes"]]
        out.append("")
    for key in ("added", "removed"):
        if cells[key]:
            out += [f"## Cells {key}", ""]
            out += [f"- {md_escape(c['cell'])} ({md_escape(c.get('status'))}, k = {c.get('k')}"
                    + (f", g = {fmt(c['estimate'])}" if c.get("estimate") is not None else "") + ")"
                    for c in cells[key]] + [""]
    if cells["changed"]:
        out += ["## Cells whose results changed", "",
                table(["cell", "k", "g", "Δg", "95% CI", "τ²", "I² %"], [_row(c) for c in cells["changed"]],
                      "lrrrrrr"), ""]
    return "\n".join(out)


def _row(change: dict[str, Any]) -> list[str]:
    v = change["values"]
    delta = v["estimate"].get("change")
    return [md_escape(change["cell"]), _pair(v["k"], 0), _pair(v["estimate"], 2),
            "–" if delta is None else f"{delta:+.2f}",
            f"{fmt_ci(v['ci_lower']['old'], v['ci_upper']['old'])} → {fmt_ci(v['ci_lower']['new'], v['ci_upper']['new'])}",
            _pair(v["tau2"], 3), _pair(v["I2"], 1)]


def _pair(pair: dict[str, Any], digits: int) -> str:
    old, new = (fmt(float(pair[k]), digits) if pair[k] is not None else "–" for k in ("old", "new"))
    return old if old == new else f"{old} → {new}"
