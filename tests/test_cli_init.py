"""`metapsych init DIR`: a working review repository scaffold; refuses a non-empty folder."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from metapsych.cli import app


def test_scaffold_is_complete_and_valid(tmp_path: Path) -> None:
    target = tmp_path / "review"
    out = CliRunner().invoke(app, ["init", str(target)])
    assert out.exit_code == 0, out.output
    files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert files == {"README.md", ".gitignore", "configs/default.yaml", "studies/example-2019.yaml",
                     ".github/workflows/metapsych.yml"}
    from metapsych.analysis.config import load_config
    from metapsych.data.load import load_studies

    assert len(load_studies(target / "studies")) == 1
    load_config(target / "configs" / "default.yaml")
    workflow = yaml.safe_load((target / ".github" / "workflows" / "metapsych.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    steps = " ".join(str(s.get("run", "")) for job in workflow["jobs"].values() for s in job["steps"])
    assert "metapsych validate studies" in steps and "metapsych run" in steps and "git push" in steps
    assert ".metapsych-cache/" in (target / ".gitignore").read_text()


def test_empty_folder_is_fine_but_a_non_empty_one_is_refused(tmp_path: Path) -> None:
    assert CliRunner().invoke(app, ["init", str(tmp_path)]).exit_code == 0
    out = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert out.exit_code == 2 and "not an empty folder" in out.stderr
    file = tmp_path / "a-file"
    file.write_text("x")
    assert CliRunner().invoke(app, ["init", str(file)]).exit_code == 2
