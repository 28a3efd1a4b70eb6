"""write_report: the files of the report, determinism, no-change no-write, incremental, atomic, safe output."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from factory import make_results, with_edit
from metapsych.errors import DataError
from metapsych.report import jobs
from metapsych.analysis.diff import diff_results
from metapsych.report.build import write_report
from metapsych.report.tables import canonical


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _stats(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*")}


EVIL = "<script>alert('x')</script> | *bold* [link](javascript:x)"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Any]:
    """One report built from a document whose data strings try to inject HTML and Markdown."""
    doc = make_results(sizes=(3, 12, 4), conditions={"depression": ["cbt", "ipt"], "ptsd": ["cbt"]})
    cell = next(c for c in doc["cells"] if c["status"] == "ok")
    study = cell["studies"][0]
    study["study"] = EVIL
    doc["trials"][study["trial"]]["citation"] = EVIL
    doc["methods"]["text"] = EVIL
    out = tmp_path_factory.mktemp("built") / "reports"
    return doc, out, write_report(doc, out, changes=None, workers=2)


def test_report_files(built: tuple[dict[str, Any], Path, Any]) -> None:
    doc, out, summary = built
    files = _tree(out)
    ok = [c for c in doc["cells"] if c["status"] == "ok"]
    assert {"index.html", "README.md", "results.json", "results.csv", "CHANGES.md", "manifest.json"} <= set(files)
    assert {f"cells/{c['id']}.html" for c in ok} <= set(files)
    for cell in ok:
        assert f"plots/{cell['id']}.forest.svg" in files and f"plots/{cell['id']}.forest.png" in files
        assert (f"plots/{cell['id']}.funnel.svg" in files) == (cell["k"] >= 10)
    assert "plots/overview.depression.png" in files and "plots/moderator.depression.year.svg" in files
    assert summary.changed and summary.cells == len(ok) and summary.cells_rendered == len(ok)
    assert summary.files == len(files)
    index = files["index.html"].decode()
    for cell in ok:
        assert f'href="cells/{cell["id"]}.html"' in index
    assert "ptsd.emdr.vs.cbt.post: 1 trial (minimum 2)" in index  # not estimable, with its reason
    assert "Direct and indirect evidence disagree" in index and "cbt:waitlist" in index
    readme = files["README.md"].decode()
    assert "![Ranking of approaches, depression](plots/overview.depression.png)" in readme
    page = files[f"cells/{ok[0]['id']}.html"].decode()
    assert "Sensitivity analyses" in page and "Methods" in page and "../plots/" in page
    big = next(c for c in ok if c["k"] >= 10)
    page = files[f"cells/{big['id']}.html"].decode()
    assert "Kendall&#39;s τ = 0.120, p = 0.340" in page and "2 studies imputed on the left" in page
    assert f'src="../plots/{big["id"]}.funnel.svg"' in page
    assert json.loads(files["results.json"]) == canonical(doc)
    assert not list(out.parent.glob(".reports.*"))  # no temporary folders left behind


def test_data_strings_are_escaped(built: tuple[dict[str, Any], Path, Any]) -> None:
    doc, out, _ = built
    for rel, data in _tree(out).items():
        if rel.endswith((".html", ".md", ".svg")):
            assert b"<script>" not in data, rel
    cell = next(c for c in doc["cells"] if c["status"] == "ok")
    page = (out / "cells" / f"{cell['id']}.html").read_text()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert\\(" in (out / "README.md").read_text()


def test_deterministic_and_no_change_writes_nothing(tmp_path: Path, tiny_results: dict[str, Any]) -> None:
    write_report(tiny_results, tmp_path / "a", changes=None, workers=2)
    write_report(copy.deepcopy(tiny_results), tmp_path / "b", changes=None, workers=1)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    before = _stats(tmp_path / "a")
    summary = write_report(tiny_results, tmp_path / "a", changes=diff_results(tiny_results, tiny_results))
    assert not summary.changed and summary.plots_rendered == 0
    assert _stats(tmp_path / "a") == before


def test_one_changed_cell_rerenders_only_that_cell(tmp_path: Path, tiny_results: dict[str, Any]) -> None:
    out = tmp_path / "reports"
    write_report(tiny_results, out, changes=None)
    target = next(c for c in tiny_results["cells"] if c["status"] == "ok" and c["k"] == 12)
    new = with_edit(tiny_results, target["id"], 0.2)
    new["inputs"]["trials"]["new-trial-2025"] = "1" * 64
    summary = write_report(new, out, changes=diff_results(tiny_results, new))
    assert summary.changed and summary.cells_rendered == 1 and summary.pages_rendered == 1
    assert all(j.cell in (None, target["id"]) for j in jobs.cell_jobs(target, "x")) and summary.plots_reused > 0
    changes = (out / "CHANGES.md").read_text()
    assert "new-trial-2025" in changes and target["id"] in changes
    # a no-change re-run keeps CHANGES.md describing the last real change
    again = write_report(new, out, changes=diff_results(new, new))
    assert not again.changed and (out / "CHANGES.md").read_text() == changes


def test_interrupted_build_leaves_previous_report(tmp_path: Path, tiny_results: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "reports"
    write_report(tiny_results, out, changes=None)
    before = _tree(out)

    def fail(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("metapsych.report.build._link_or_copy", fail)
    with pytest.raises(KeyboardInterrupt):
        write_report(with_edit(tiny_results, tiny_results["cells"][0]["id"], 0.1), out, changes=None)
    assert _tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["reports"]


@pytest.mark.parametrize("bad", ["../evil", "a/b", "Upper.case", ".hidden", "a..b"])
def test_file_names_only_from_valid_ids(tmp_path: Path, small_results: dict[str, Any], bad: str) -> None:
    small_results["cells"][0]["id"] = bad
    with pytest.raises(DataError, match="cannot be used in a file name"):
        write_report(small_results, tmp_path / "reports", changes=None)
    assert not (tmp_path / "reports").exists()


def test_not_estimable_moderator_has_no_plot(tmp_path: Path, tiny_results: dict[str, Any]) -> None:
    tiny_results["moderators"]["depression"]["mean_age"] = {"k": 0, "coefficients": {}, "QM": None, "QM_df": None,
                                                            "QM_p": None, "R2": None, "points": []}
    out = tmp_path / "reports"
    write_report(tiny_results, out, changes=None)
    assert not (out / "plots" / "moderator.depression.mean_age.svg").exists()
    assert "Not estimable (k = 0)." in (out / "index.html").read_text()
    assert "(None)" not in (out / "README.md").read_text()


def test_results_json_reuses_the_lines_of_unchanged_cells_only(tmp_path: Path, tiny_results: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from metapsych.report import tables

    out = tmp_path / "reports"
    write_report(tiny_results, out, changes=None, workers=1)
    target = next(c for c in tiny_results["cells"] if c["status"] == "ok")
    new = with_edit(tiny_results, target["id"], 0.2)
    serialised: list[str] = []
    original = tables.cell_line
    monkeypatch.setattr(tables, "cell_line", lambda cell: serialised.append(cell.get("id")) or original(cell))
    write_report(new, out, changes=None, workers=1)
    assert serialised == [target["id"]]
    monkeypatch.setattr(tables, "cell_line", original)
    assert (out / "results.json").read_bytes() == tables.results_json(new)
    # a results.json edited by hand is not the file the manifest describes: nothing is reused from it
    edited = out / "results.json"
    edited.write_bytes(edited.read_bytes().replace(b'"k":12', b'"k":13', 1))
    newer = with_edit(new, target["id"], 0.1)
    serialised.clear()
    monkeypatch.setattr(tables, "cell_line", lambda cell: serialised.append(cell.get("id")) or original(cell))
    write_report(newer, out, changes=None, workers=1)
    assert len(serialised) == len(newer["cells"])
    monkeypatch.setattr(tables, "cell_line", original)
    assert (out / "results.json").read_bytes() == tables.results_json(newer)


def test_results_csv_reuses_the_rows_of_unchanged_cells_only(tmp_path: Path, tiny_results: dict[str, Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows of unchanged cells are copied from the previous results.csv (split by the line counts the manifest
    recorded, so a message with a line break stays whole); the file equals the one written afresh."""
    import copy

    from metapsych.report import tables

    first = copy.deepcopy(tiny_results)
    ok = [c for c in first["cells"] if c["status"] == "ok"]
    ok[-1]["main"]["message"] = 'two lines,\n"quoted"'
    out = tmp_path / "reports"
    write_report(first, out, changes=None, workers=1)
    new = with_edit(first, ok[0]["id"], 0.2)
    rows: list[str] = []
    original = tables._cell_rows
    monkeypatch.setattr(tables, "_cell_rows", lambda cell: rows.append(cell["id"]) or original(cell))
    write_report(new, out, changes=None, workers=1)
    assert rows == [ok[0]["id"]]
    monkeypatch.setattr(tables, "_cell_rows", original)
    assert (out / "results.csv").read_bytes() == tables.results_csv(new)
    # a results.csv edited by hand is not the file the manifest describes: every row is written afresh
    (out / "results.csv").write_bytes((out / "results.csv").read_bytes() + b"x\n")
    rows.clear()
    monkeypatch.setattr(tables, "_cell_rows", lambda cell: rows.append(cell["id"]) or original(cell))
    newer = with_edit(new, ok[0]["id"], 0.1)
    write_report(newer, out, changes=None, workers=1)
    assert len(rows) == len(newer["cells"])
    monkeypatch.setattr(tables, "_cell_rows", original)
    assert (out / "results.csv").read_bytes() == tables.results_csv(newer)
