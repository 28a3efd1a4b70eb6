"""Output safety: `metapsych run --out` replaces the whole folder it names, so it refuses every folder that is
not a report (the config's folder, the trials' folder, the review itself, a file), before any work is done;
file-system refusals are errors that name the path, never tracebacks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metapsych.cli import app
from metapsych.commands.preflight import check_report_folder
from metapsych.errors import InputError

runner = CliRunner()


@pytest.fixture()
def review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "review"
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    monkeypatch.chdir(root)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("out", ["configs", "studies", ".", "..", "studies/example-2019.yaml", "README.md",
                                 ".github", "README.md/sub"])
def test_run_never_replaces_a_folder_that_is_not_a_report(review: Path, out: str) -> None:
    before = snapshot(review)
    result = runner.invoke(app, ["run", "--quiet", "--out", out])
    assert result.exit_code == 2, result.output
    assert f"--out {out}:" in result.stderr and "Traceback" not in result.output
    assert snapshot(review) == before


@pytest.mark.parametrize("setup", ["new", "empty", "report"])
def test_new_empty_and_earlier_report_folders_are_accepted(tmp_path: Path, setup: str) -> None:
    out = tmp_path / "reports"
    if setup != "new":
        out.mkdir()
    if setup == "report":
        (out / "manifest.json").write_text("{}")
        (out / "index.html").write_text("<html></html>")
    check_report_folder(out, keep=(tmp_path / "studies",))


@pytest.mark.parametrize("extra", ["thesis.docx", ".gitkeep", "plots/notes.txt", "cells/drafts"])
def test_a_report_folder_holding_a_users_file_is_refused(review: Path, extra: str) -> None:
    """A folder with results.json or manifest.json is a report only if it holds nothing a report does not:
    a run replaces the whole folder, which would delete the user's file."""
    out = review / "fake"
    (out / "plots").mkdir(parents=True)
    (out / "results.json").write_text("{}")
    (out / "plots" / "a.svg").write_text("<svg/>")
    (out / extra).parent.mkdir(parents=True, exist_ok=True)
    (out / extra).write_text("mine")
    before = snapshot(review)
    result = runner.invoke(app, ["run", "--quiet", "--out", "fake"])
    assert result.exit_code == 2 and extra in result.stderr and "not a report" in result.stderr, result.output
    assert snapshot(review) == before


def test_a_written_report_holds_only_what_the_check_expects(review: Path) -> None:
    """The report writer and the output check agree on what a report folder holds (so a report re-runs), and
    a file browser's metadata (.DS_Store) does not stop a re-run."""
    assert runner.invoke(app, ["run", "--quiet"]).exit_code == 0
    (review / "reports" / ".DS_Store").write_bytes(b"")
    (review / "reports" / "plots" / "Thumbs.db").write_bytes(b"")
    assert runner.invoke(app, ["run", "--quiet", "--force"]).exit_code == 0
    check_report_folder(review / "reports")


def test_an_unwritable_parent_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match="cannot write to"):
        check_report_folder(tmp_path / "reports")


def test_file_system_errors_name_the_path_and_exit_2(review: Path) -> None:
    (review / "target").write_text("a file")
    result = runner.invoke(app, ["effects", "--out", "target/effects.csv"])
    assert result.exit_code == 2, result.output
    assert "target" in result.stderr and "Traceback" not in result.output
    assert "internal error" not in result.stderr
