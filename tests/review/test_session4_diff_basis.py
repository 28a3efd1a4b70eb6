"""Session 4 review: the diff behind CHANGES.md reads the previous results from the slim copy kept in the
cache (commands/run.py ``_previous_results``, analysis/diff.py ``diff_basis``). CHANGES.md must be what diffing
against the report's results.json itself gives, whatever the cache file holds."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from report.factory import make_results, with_edit

from metapsych.analysis.diff import diff_markdown, diff_results
from metapsych.commands import run as command
from metapsych.commands.diff import read_results
from metapsych.report.tables import results_json


@pytest.fixture()
def previous(tmp_path: Path) -> tuple[dict[str, Any], Path, Path]:
    """A results document, its results.json in a report folder, and a cache folder with its diff basis."""
    doc = make_results(sizes=(3, 12), conditions={"depression": ["cbt", "ipt"]})
    out, cache = tmp_path / "reports", tmp_path / "cache"
    out.mkdir()
    cache.mkdir()
    (out / "results.json").write_bytes(results_json(doc))
    command._keep_diff_basis(doc, out, cache)
    return doc, out, cache


def _changes(previous: dict[str, Any] | None, new: dict[str, Any]) -> str:
    assert previous is not None
    return diff_markdown(diff_results(previous, new))


def test_the_kept_basis_gives_the_changes_the_file_gives(previous: tuple[dict[str, Any], Path, Path]) -> None:
    doc, out, cache = previous
    ok = [c["id"] for c in doc["cells"] if c.get("main")]
    new = with_edit(with_edit(doc, ok[0], 0.5), ok[-1], -0.001)
    new["cells"] = new["cells"][1:]
    kept = command._previous_results(out, cache)
    assert kept is not None and "studies" not in kept["cells"][0]  # the slim copy was used
    assert _changes(kept, new) == _changes(read_results(out / "results.json"), new)


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '"text"', "{}", '{"results_sha256": 5}',
                                     '{"results_sha256": "%s", "basis": [1]}', '{"results_sha256": "0", "basis": {}}'])
def test_a_corrupt_or_foreign_cache_file_falls_back_to_the_report(previous: tuple[dict[str, Any], Path, Path],
                                                                  content: str) -> None:
    _, out, cache = previous
    digest = hashlib.sha256((out / "results.json").read_bytes()).hexdigest()
    (cache / command.DIFF_BASIS).write_text(content.replace("%s", digest))
    assert command._previous_results(out, cache) == read_results(out / "results.json")


def test_a_replaced_report_is_read_itself(previous: tuple[dict[str, Any], Path, Path]) -> None:
    """The report folder restored to another results.json (e.g. from git): the kept basis is not used."""
    doc, out, cache = previous
    older = with_edit(doc, next(c["id"] for c in doc["cells"] if c.get("main")), 0.25)
    (out / "results.json").write_bytes(results_json(older))
    assert command._previous_results(out, cache) == read_results(out / "results.json")


def test_a_damaged_report_gives_no_previous_results(previous: tuple[dict[str, Any], Path, Path]) -> None:
    _, out, cache = previous
    (out / "results.json").write_text("[1]")
    assert command._previous_results(out, cache) is None
