"""Markdown for GitHub: README.md of the report (with relative links to the PNG plots) and the escaping
every data string goes through, so a citation like ``<script>`` or ``a|b`` shows as text and cannot break
a table or inject HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from metapsych.report.style import fmt, fmt_ci

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#|~])")
_BLOCK_START = re.compile(r"^(\s*)([-+]|\d+\.)(?=\s|$)")  # would start a list item


def md_escape(text: Any) -> str:
    """Escape a data string for Markdown (inline and table cells): HTML-special characters become
    entities, Markdown punctuation is backslash-escaped (a leading ``-``, ``+`` or ``1.`` too, so no list
    starts) and line breaks become spaces."""
    if text is None:
        return ""
    value = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = " ".join(value.split())
    value = _MD_SPECIAL.sub(r"\\\1", value)
    return _BLOCK_START.sub(_escape_list_marker, value)


def _escape_list_marker(match: re.Match[str]) -> str:
    marker = match.group(2)
    return match.group(1) + (marker[:-1] + "\\." if marker.endswith(".") else "\\" + marker)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A GitHub table; cells must already be escaped (or be numbers formatted by us)."""
    align = align or "l" * len(header)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _network_lines(network: dict[str, Any] | None, condition: str) -> list[str]:
    """Network meta-analysis of a condition: estimates versus the reference, and where evidence disagrees."""
    if not network:
        return []
    out = [f"Network meta-analysis versus **{md_escape(network['reference'])}**: tau² = {fmt(network['tau2'], 3)}; "
           f"Q between designs = {fmt(network['Q_between'])}.", ""]
    if network.get("forest_png"):
        out += [f"![Network estimates, {md_escape(condition)}]({network['forest_png']})", ""]
    out += [f"- Direct and indirect evidence disagree (p < 0.05) for {md_escape(s['comparison'])}: direct "
            f"{fmt(s['direct'])}, indirect {fmt(s['indirect'])}" for s in network.get("disagreements") or []]
    return out + ([""] if network.get("disagreements") else [])


def readme(results: dict[str, Any], view: dict[str, Any]) -> str:
    """The report's README.md: methods, per-condition overview (ranking plot and table), every cell."""
    methods = results.get("methods") or {}
    out = ["# metapsych report", "",
           "Living comparative-effectiveness meta-analysis. Open `index.html` for the full report with one "
           "page per cell; `results.json` and `results.csv` hold every number.", "",
           "## Methods", "", md_escape(methods.get("text") or ""), ""]
    choices = [(md_escape(k), md_escape(v)) for k, v in sorted(methods.items()) if k != "text"]
    if choices:
        out += [table(["setting", "value"], [list(c) for c in choices]), ""]
    for condition in view["conditions"]:
        out += [f"## {md_escape(condition['name'])}", ""]
        if condition.get("ranking_png"):
            out += [f"![Ranking of approaches, {md_escape(condition['name'])}]({condition['ranking_png']})", ""]
        rows = [[str(r["rank"]), md_escape(r["approach"]), md_escape(r["comparator"]), md_escape(r["time"]),
                 str(r["k"]), fmt(r["estimate"]), fmt_ci(r["ci_lower"], r["ci_upper"]),
                 "yes" if r.get("flag") else "", f"[forest]({r['forest_png']})" if r.get("forest_png") else ""]
                for r in condition["overview"]]
        if rows:
            out += [table(["rank", "approach", "comparator", "time", "k", "g", "95% CI",
                           "changes under sensitivity", "plot"], rows, "rlllrrrll"), ""]
        out += _network_lines(condition.get("network"), condition["name"])
        for mod in condition.get("moderators", []):
            out += [f"Moderator **{md_escape(mod['name'])}**: {md_escape(mod['test_text'])}", ""]
            if mod["png"]:
                out += [f"![Bubble plot, {md_escape(mod['name'])}]({mod['png']})", ""]
    out += ["## All cells", ""]
    rows = [[md_escape(c["id"]), str(c.get("k") if c.get("k") is not None else ""), fmt(c.get("estimate")),
             fmt_ci(c.get("ci_lower"), c.get("ci_upper")), fmt(c.get("I2"), 1), md_escape(c["status"])]
            for c in view["cells"]]
    out += [table(["cell", "k", "g", "95% CI", "I² %", "status"], rows, "lrrrrl"), ""]
    if view["not_estimable"]:
        out += ["## Not estimable", ""]
        out += [f"- {md_escape(n['cell'])}: {md_escape(n['reason'])}" for n in view["not_estimable"]]
        out.append("")
    return "\n".join(out)
