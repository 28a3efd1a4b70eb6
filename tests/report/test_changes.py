"""CHANGES.md: trials added/removed/edited, per-cell deltas, conclusion and ranking changes, escaped."""

from __future__ import annotations

import copy
from typing import Any

from factory import with_edit
from metapsych.analysis.diff import diff_results
from metapsych.report.changes import changes_markdown, conclusion


def test_conclusion_from_ci() -> None:
    assert conclusion({"ci_lower": 0.1, "ci_upper": 0.5}) == "benefit"
    assert conclusion({"ci_lower": -0.5, "ci_upper": -0.1}) == "harm"
    assert conclusion({"ci_lower": -0.1, "ci_upper": 0.5}) == "unclear"
    assert conclusion(None) == "not estimable"


def test_first_report_and_no_change(small_results: dict[str, Any]) -> None:
    assert "first report" in changes_markdown(None)
    assert "Nothing changed." in changes_markdown(diff_results(small_results, copy.deepcopy(small_results)))


def test_trials_and_cells_changes(small_results: dict[str, Any]) -> None:
    old = small_results
    cell = next(c for c in old["cells"] if c["status"] == "ok" and c["main"]["ci_lower"] > 0)
    new = with_edit(old, cell["id"], -(cell["main"]["ci_lower"] + 0.05))  # the CI now includes zero
    trials = new["inputs"]["trials"]
    removed, edited = sorted(trials)[:2]
    del trials[removed]
    trials[edited] = "0" * 64
    trials["new-trial-2025"] = "1" * 64
    new["trials"]["new-trial-2025"] = {"study": "<b>Evil</b> | 2025", "citation": "x", "year": 2025,
                                       "condition": "depression", "rob": "low"}
    rows = [r for r in new["overview"][cell["condition"]] if r["comparator"] == cell["comparator"]]
    rows[0]["rank"], rows[1]["rank"] = rows[1]["rank"], rows[0]["rank"]
    text = changes_markdown(diff_results(old, new))
    assert "## Trials added\n\n- new-trial-2025 (&lt;b&gt;Evil&lt;/b&gt; \\| 2025)" in text
    assert f"- {removed}" in text and "## Trials edited" in text
    assert "## Changed conclusions" in text and "now includes zero" in text
    assert "## Ranking changes" in text
    assert f"{cell['main']['estimate']:.2f} → " in text
    assert "<b>" not in text
