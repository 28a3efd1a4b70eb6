"""`metapsych import metapsy`: real-file quirks (BOM, CRLF, ';' and decimal comma, NR, Inf, a quoted field over
two lines, mixed decimal marks), multi-arm trials sharing a control, arm-switched and exact duplicates, and
every row that cannot be converted listed with its line and reason."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from metapsych.cli import app
from metapsych.data.load import load_studies

ROOT = Path(__file__).resolve().parent.parent
QUIRKS = ROOT / "tests" / "fixtures" / "metapsy" / "quirks.csv"
runner = CliRunner()


def run_import(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["import", "metapsy", *args])


def test_quirky_file_is_imported_and_every_unconverted_row_listed(tmp_path: Path) -> None:
    result = run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "3 trial file(s) written" in result.output and "from 5 row(s)" in result.output
    out = result.output
    assert f"{QUIRKS}:6: condition_arm1: row not converted: arm-switched duplicate of line 3" in out
    assert f"{QUIRKS}:7: (row): row not converted: exact duplicate of line 2" in out
    assert f"{QUIRKS}:8: condition_arm1: row not converted: the arm has no condition code" in out
    assert f"{QUIRKS}:9: (row): row not converted: no usable numbers" in out
    assert f"{QUIRKS}:12: mean_arm1: row not converted: cannot read '12,5,3' as a number" in out
    assert f"{QUIRKS}:13: time: row not converted: unknown time point 'week 3'" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "depression-alpha-2020.yaml", "depression-beta-2019.yaml", "depression-delta-2021.yaml"]
    assert len(load_studies(tmp_path)) == 3


def test_multi_arm_trial_shares_its_control(tmp_path: Path) -> None:
    run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path))
    beta = yaml.safe_load((tmp_path / "depression-beta-2019.yaml").read_text())
    assert [a["id"] for a in beta["arms"]] == ["f2f", "cau", "internet"]
    assert [a["approach"] for a in beta["arms"]] == ["cbt", "care-as-usual", "ipt"]
    assert beta["comparisons"] == [["f2f", "cau"], ["internet", "cau"]]
    (outcome,) = beta["outcomes"]
    assert outcome["results"]["internet"] == {"mean": 9, "sd": 4.2, "n": 31}  # '9.0' in a decimal-comma file
    assert "two lines" in beta["citation"]
    assert "format" not in beta["arms"][1]  # the switched duplicate row did not leak its format into the control


def test_unusable_means_fall_back_to_the_database_g(tmp_path: Path) -> None:
    run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path))
    delta = yaml.safe_load((tmp_path / "depression-delta-2021.yaml").read_text())
    post, follow_up = delta["outcomes"]
    assert post["precomputed"] == {"arms": ["ba", "waitlist"], "g": 1.1, "se": 0.3, "source": "metapsy .g"}
    assert "SD of arm 1 is 0" in post["note"]
    assert follow_up["timepoint"] == {"label": "follow-up", "weeks": 26}
    assert follow_up["results"]["ba"] == {"events": 15, "n": 25}
    assert follow_up["lower_is_better"] is False
    assert delta["arms"][0]["original_code"] == "bat"


def test_existing_files_are_not_overwritten_without_flag(tmp_path: Path) -> None:
    assert run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path)).exit_code == 0
    target = tmp_path / "depression-alpha-2020.yaml"
    target.write_text("edited")
    result = run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "already exist" in result.output and "--overwrite" in result.output
    assert target.read_text() == "edited"
    assert run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path), "--overwrite").exit_code == 0
    assert target.read_text().startswith("# Imported from quirks.csv")


def test_argument_errors_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_import(str(QUIRKS), "--condition", "depresion", "--out", str(out))
    assert result.exit_code == 2 and "did you mean 'depression'?" in result.output
    result = run_import(str(QUIRKS), "--out", str(out))
    assert result.exit_code == 2 and "--condition" in result.output
    assert run_import(str(tmp_path / "missing.csv"), "--out", str(out)).exit_code == 2
    header_only = tmp_path / "metapsy-ptsd.csv"
    header_only.write_text("study;arm\nA;B\n")
    result = run_import(str(header_only), "--out", str(out))
    assert result.exit_code == 2
    assert f"{header_only}:1: condition_arm1: required column is missing" in result.output
    assert not out.exists()


def test_condition_is_taken_from_the_file_name(tmp_path: Path) -> None:
    source = tmp_path / "metapsy-sad-psyctr.csv"
    source.write_bytes(QUIRKS.read_bytes())
    result = run_import(str(source), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "social-anxiety-alpha-2020.yaml").exists()
