"""diff_results: trials added/removed/edited, per-cell changes, and changes of conclusion."""

from __future__ import annotations

import copy

from metapsych.analysis.diff import diff_markdown, diff_results


def cell(cid: str, k: int, est: float, lo: float, hi: float, status: str = "ok") -> dict:
    condition, approach, _, comparator, time = cid.split(".")
    main = {"k": k, "estimate": est, "ci_lower": lo, "ci_upper": hi, "tau2": 0.1, "I2": 40.0}
    return {"id": cid, "condition": condition, "approach": approach, "comparator": comparator, "time": time,
            "status": status, "k": k, "main": main if status == "ok" else None}


def doc(trials: dict, cells: list[dict]) -> dict:
    overview: dict = {}
    ok = sorted((c for c in cells if c["status"] == "ok"), key=lambda c: -c["main"]["estimate"])
    for rank, c in enumerate(ok, 1):
        overview.setdefault(c["condition"], []).append({"approach": c["approach"], "comparator": c["comparator"],
                                                        "time": c["time"], "rank": rank, "cell": c["id"]})
    return {"metapsych_version": "0.1.0", "inputs": {"trials": trials, "config_sha256": "c"},
            "trials": {t: {"study": f"Study {t}"} for t in trials}, "cells": cells, "overview": overview}


OLD = doc({"a": "1", "b": "2", "c": "3"}, [
    cell("depression.cbt.vs.waitlist.post", 2, 0.50, 0.10, 0.90),
    cell("depression.pst.vs.waitlist.post", 2, 0.40, 0.05, 0.75),
    cell("depression.ipt.vs.waitlist.post", 1, 0.0, 0.0, 0.0, status="too_few_trials"),
])
NEW = doc({"a": "1", "b": "2x", "d": "4"}, [
    cell("depression.cbt.vs.waitlist.post", 3, 0.30, -0.05, 0.65),
    cell("depression.pst.vs.waitlist.post", 2, 0.40, 0.05, 0.75),
    cell("depression.ipt.vs.waitlist.post", 2, 0.2, 0.01, 0.4),
    cell("depression.ba.vs.waitlist.post", 2, 0.2, 0.01, 0.4),
])


def test_trials_added_removed_edited() -> None:
    trials = diff_results(OLD, NEW)["trials"]
    assert trials == {"added": [{"trial": "d", "study": "Study d"}], "removed": [{"trial": "c", "study": "Study c"}],
                      "edited": [{"trial": "b", "study": "Study b"}]}


def test_cell_changes_and_conclusions() -> None:
    diff = diff_results(OLD, NEW)
    changed = {c["cell"]: c for c in diff["cells"]["changed"]}
    assert set(changed) == {"depression.cbt.vs.waitlist.post", "depression.ipt.vs.waitlist.post"}
    cbt = changed["depression.cbt.vs.waitlist.post"]
    assert cbt["values"]["estimate"]["old"] == 0.5 and abs(cbt["values"]["estimate"]["change"] + 0.2) < 1e-12
    assert cbt["conclusion"] == "CI now includes zero (favours therapy -> includes zero)"
    assert "too_few_trials to ok" in changed["depression.ipt.vs.waitlist.post"]["conclusion"]
    assert [c["cell"] for c in diff["cells"]["added"]] == ["depression.ba.vs.waitlist.post"]
    assert {(r["approach"], r["old_rank"], r["new_rank"]) for r in diff["rank_changes"]} == {("cbt", 1, 2),
                                                                                            ("pst", 2, 1)}
    text = diff_markdown(diff)
    assert "Trials added (1): d (Study d)" in text and "## Changed conclusions" in text
    assert "| depression.cbt.vs.waitlist.post | 2 -> 3 | 0.50 -> 0.30 |" in text


def test_identical_documents_have_no_changes() -> None:
    diff = diff_results(OLD, copy.deepcopy(OLD))
    assert diff["unchanged"] and not diff["cells"]["changed"] and not diff["rank_changes"]
    assert "Nothing changed." in diff_markdown(diff)
