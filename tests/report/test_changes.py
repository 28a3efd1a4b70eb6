"""CHANGES.md: trials added/removed/edited, per-cell deltas, conclusion and ranking changes."""

from __future__ import annotations

import copy
from typing import Any

from factory import with_edit
from metapsych.report.changes import compute_changes, conclusion, render_changes


def test_conclusion_from_ci() -> None:
    assert conclusion({"ci_lower": 0.1, "ci_upper": 0.5}) == "benefit"
    assert conclusion({"ci_lower": -0.5, "ci_upper": -0.1}) == "harm"
    assert conclusion({"ci_lower": -0.1, "ci_upper": 0.5}) == "unclear"
    assert conclusion(None) == "not estimable"


def test_no_change_gives_an_empty_diff(small_results: dict[str, Any]) -> None:
    diff = compute_changes(small_results, copy.deepcopy(small_results))
    assert not any(diff.values())
    assert "Nothing changed." in render_changes(diff)


def test_trials_and_cells_changes(small_results: dict[str, Any]) -> None:
    old = small_results
    cell = next(c for c in old["cells"] if c["status"] == "ok" and c["main"]["ci_lower"] > 0)
    new = with_edit(old, cell["id"], -(cell["main"]["ci_lower"] + 0.05))  # CI now crosses zero
    trials = new["inputs"]["trials"]
    removed = sorted(trials)[0]
    edited = sorted(trials)[1]
    del trials[removed]
    trials[edited] = "0" * 64
    trials["new-trial-2025"] = "1" * 64
    rows = new["overview"][cell["condition"]]
    rows[0]["rank"], rows[1]["rank"] = rows[1]["rank"], rows[0]["rank"]
    diff = compute_changes(old, new)
    assert diff["trials_added"] == ["new-trial-2025"]
    assert diff["trials_removed"] == [removed] and diff["trials_edited"] == [edited]
    changed = {c["cell"]: c for c in diff["cells_changed"]}
    assert changed[cell["id"]]["conclusion"] == ["benefit", "unclear"]
    assert changed[rows[0]["cell"]]["rank"] == [rows[1]["rank"], rows[0]["rank"]]
    text = render_changes(diff)
    assert "new\\-trial\\-2025" in text and "benefit → unclear" in text
    assert f"{cell['main']['estimate']:.2f} → " in text


def test_first_report() -> None:
    assert "first report" in render_changes(None)
