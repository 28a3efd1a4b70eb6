"""What changed between two results documents: the living review's memory.

``diff_results(old, new)`` computes the comparison that ``metapsych diff`` prints and the report's
CHANGES.md renders: trials added, removed or edited (by file hash), cells added or removed, and per cell
the change in k, g, its CI, tau^2 and I^2, plus changes of conclusion: the CI now includes or excludes
zero, the cell became (or stopped being) estimable, or its rank among the approaches changed.
"""

from __future__ import annotations

DIFF_VERSION = 1
MAIN_KEYS = ("k", "estimate", "ci_lower", "ci_upper", "tau2", "I2")
TOLERANCE = 1e-9  # results.json keeps 10 significant digits


def diff_results(old: dict, new: dict) -> dict:
    """The changes from ``old`` to ``new`` (both results documents); every list is sorted."""
    old_cells = {c["id"]: c for c in old.get("cells", [])}
    new_cells = {c["id"]: c for c in new.get("cells", [])}
    changed = [change for cid in sorted(old_cells.keys() & new_cells.keys())
               if (change := _cell_change(old_cells[cid], new_cells[cid])) is not None]
    ranks = _rank_changes(old.get("overview", {}), new.get("overview", {}))
    return {
        "diff_version": DIFF_VERSION,
        "trials": _trial_changes(old.get("inputs", {}).get("trials", {}), new.get("inputs", {}).get("trials", {}),
                                 {**old.get("trials", {}), **new.get("trials", {})}),
        "config_changed": old.get("inputs", {}).get("config_sha256") != new.get("inputs", {}).get("config_sha256"),
        "version": {"old": old.get("metapsych_version"), "new": new.get("metapsych_version")},
        "cells": {
            "added": [_cell_summary(new_cells[c]) for c in sorted(new_cells.keys() - old_cells.keys())],
            "removed": [_cell_summary(old_cells[c]) for c in sorted(old_cells.keys() - new_cells.keys())],
            "changed": changed,
        },
        "conclusions": [c for c in changed if c["conclusion"]],
        "rank_changes": ranks,
        "unchanged": not (changed or ranks or new_cells.keys() ^ old_cells.keys())
        and old.get("inputs") == new.get("inputs"),
    }


def diff_basis(results: dict) -> dict:
    """The parts of a results document that ``diff_results`` reads of the older document, itself a results
    document (a few percent of the whole: cells without their studies and diagnostics)."""
    cells = [{key: cell[key] for key in ("id", "status", "k") if key in cell}
             | ({"main": {key: cell["main"].get(key) for key in MAIN_KEYS}} if cell.get("main") else {})
             for cell in results.get("cells", [])]
    return {"cells": cells, **{key: results[key] for key in ("inputs", "trials", "overview", "metapsych_version")
                               if key in results}}


def _trial_changes(old: dict, new: dict, info: dict) -> dict:
    def described(ids: set[str]) -> list[dict]:
        return [{"trial": t, "study": (info.get(t) or {}).get("study")} for t in sorted(ids)]

    edited = {t for t in old.keys() & new.keys() if old[t] != new[t]}
    return {"added": described(new.keys() - old.keys()), "removed": described(old.keys() - new.keys()),
            "edited": described(edited)}


def _cell_summary(cell: dict) -> dict:
    main = cell.get("main") or {}
    return {"cell": cell["id"], "status": cell.get("status"), "k": cell.get("k"),
            "estimate": main.get("estimate"), "ci_lower": main.get("ci_lower"), "ci_upper": main.get("ci_upper")}


def _cell_change(old: dict, new: dict) -> dict | None:
    before, after = old.get("main") or {}, new.get("main") or {}
    values = {key: {"old": before.get(key), "new": after.get(key)} for key in MAIN_KEYS}
    differs = {key for key, pair in values.items() if not _same(pair["old"], pair["new"])}
    status = {"old": old.get("status"), "new": new.get("status")}
    if not differs and status["old"] == status["new"] and old.get("k") == new.get("k"):
        return None
    for key, pair in values.items():
        if key != "k" and pair["old"] is not None and pair["new"] is not None:
            pair["change"] = pair["new"] - pair["old"]
    conclusion = _conclusion(before, after, status)
    return {"cell": new["id"], "status": status, "values": values, "changed": sorted(differs),
            "conclusion": conclusion}


def _conclusion(before: dict, after: dict, status: dict) -> str | None:
    if status["old"] != status["new"]:
        return f"status changed from {status['old']} to {status['new']}"
    was, now = _significance(before), _significance(after)
    if was is None or now is None or was == now:
        return None
    return f"CI {'now excludes' if now != 'includes zero' else 'now includes'} zero ({was} -> {now})"


def _significance(main: dict) -> str | None:
    lo, hi = main.get("ci_lower"), main.get("ci_upper")
    if lo is None or hi is None:
        return None
    if lo > 0:
        return "favours therapy"
    if hi < 0:
        return "favours comparator"
    return "includes zero"


def _rank_changes(old: dict, new: dict) -> list[dict]:
    def ranks(overview: dict) -> dict:
        return {(cond, r["comparator"], r["time"], r["approach"]): (r["rank"], r["cell"])
                for cond, rows in overview.items() for r in rows}

    before, after = ranks(old), ranks(new)
    out = []
    for key in sorted(before.keys() & after.keys()):
        if before[key][0] != after[key][0]:
            condition, comparator, time, approach = key
            out.append({"cell": after[key][1], "condition": condition, "approach": approach,
                        "comparator": comparator, "time": time, "old_rank": before[key][0],
                        "new_rank": after[key][0]})
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    return a == b


def diff_markdown(diff: dict) -> str:
    """The diff as Markdown (what ``metapsych diff`` prints by default)."""
    lines = ["# Changes since the previous report", ""]
    if diff["unchanged"]:
        return "\n".join(lines + ["Nothing changed.", ""])
    trials = diff["trials"]
    for label in ("added", "removed", "edited"):
        if trials[label]:
            names = ", ".join(f"{t['trial']}" + (f" ({t['study']})" if t["study"] else "") for t in trials[label])
            lines.append(f"- Trials {label} ({len(trials[label])}): {names}")
    if diff["config_changed"]:
        lines.append("- The analysis configuration changed.")
    if diff["version"]["old"] != diff["version"]["new"]:
        lines.append(f"- metapsych {diff['version']['old']} -> {diff['version']['new']}.")
    lines += _conclusion_lines(diff) + _cell_lines(diff)
    return "\n".join(lines) + "\n"


def _conclusion_lines(diff: dict) -> list[str]:
    lines = []
    if diff["conclusions"]:
        lines += ["", "## Changed conclusions", ""]
        lines += [f"- {c['cell']}: {c['conclusion']}" for c in diff["conclusions"]]
    if diff["rank_changes"]:
        lines += ["", "## Ranking changes", ""]
        lines += [f"- {r['condition']} vs {r['comparator']} ({r['time']}): {r['approach']} rank "
                  f"{r['old_rank']} -> {r['new_rank']}" for r in diff["rank_changes"]]
    return lines


def _cell_lines(diff: dict) -> list[str]:
    cells = diff["cells"]
    lines = []
    for label in ("added", "removed"):
        if cells[label]:
            lines += ["", f"## Cells {label}", ""]
            lines += [f"- {c['cell']} ({c['status']}, k = {c['k']}{_g(c)})" for c in cells[label]]
    if cells["changed"]:
        lines += ["", "## Changed cells", "", "| cell | k | g | 95% CI | tau^2 | I^2 |", "|---|---|---|---|---|---|"]
        for c in cells["changed"]:
            v = c["values"]
            lines.append(f"| {c['cell']} | {_pair(v['k'], '{}')} | {_pair(v['estimate'])} | "
                         f"[{_num(v['ci_lower']['old'])}, {_num(v['ci_upper']['old'])}] -> "
                         f"[{_num(v['ci_lower']['new'])}, {_num(v['ci_upper']['new'])}] | "
                         f"{_pair(v['tau2'])} | {_pair(v['I2'], '{:.1f}')} |")
    return lines


def _g(cell: dict) -> str:
    return f", g = {_num(cell['estimate'])}" if cell.get("estimate") is not None else ""


def _pair(pair: dict, fmt: str = "{:.2f}") -> str:
    old, new = (_num(pair[key], fmt) for key in ("old", "new"))
    return old if old == new else f"{old} -> {new}"


def _num(value: object, fmt: str = "{:.2f}") -> str:
    return "NA" if value is None else fmt.format(value)
