"""`metapsych validate`: every malformed trial file is reported at its exact file, line and field with exit
code 2; the shipped corpus is clean; no input ever makes the CLI print a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from metapsych.cli import app

ROOT = Path(__file__).resolve().parent.parent
MALFORMED = ROOT / "tests" / "fixtures" / "malformed"
EXPECTED = json.loads((MALFORMED / "expected.json").read_text())
VALID = """id: smith-2019
study: Smith, 2019
condition: depression
arms:
  - {id: cbt, approach: CBT, format: ind, randomized: 60}
  - {id: wl, approach: wl, randomized: 58}
outcomes:
  - instrument: BDI-II
    timepoint: {label: post, weeks: 12}
    results:
      cbt: {mean: 14.2, sd: 8.1, n: 55}
      wl: {mean: 22.0, sd: 9.0, n: 52}
"""
runner = CliRunner()


def validate(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["validate", *args])


def test_the_malformed_corpus_has_at_least_40_files() -> None:
    assert len(EXPECTED) >= 40
    assert {p.name for p in MALFORMED.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_file_is_reported_at_its_line_and_field(name: str) -> None:
    expected = EXPECTED[name]
    path = MALFORMED / name
    result = validate(str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}:{expected['line']}: {expected['field']}:" in result.output
    assert "Traceback" not in result.output


def test_all_problems_of_a_folder_are_reported_at_once() -> None:
    result = validate(str(MALFORMED), "--format", "json")
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    files = {Path(p["file"]).name for p in payload["errors"]}
    assert files == set(EXPECTED)
    assert payload["summary"]["trials"] == 0


def test_several_problems_in_one_file_are_all_listed(tmp_path: Path) -> None:
    text = VALID.replace("sd: 8.1", "sd: 0").replace("approach: wl", "approach: waitlst").replace("n: 52", "n: 1")
    (tmp_path / "smith-2019.yaml").write_text(text)
    result = validate(str(tmp_path / "smith-2019.yaml"))
    assert result.exit_code == 2
    assert "smith-2019.yaml:6: arms[1].approach: unknown approach 'waitlst'; did you mean 'waitlist'?" in result.output
    assert "smith-2019.yaml:11: outcomes[0].results.cbt.sd: sd is 0" in result.output
    assert "smith-2019.yaml:12: outcomes[0].results.wl.n: n is 1" in result.output


def test_duplicate_trial_ids_across_folders(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "smith-2019.yaml").write_text(VALID)
    result = validate(str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'b' / 'smith-2019.yaml'}:1: id: duplicate trial id 'smith-2019'" in result.output


def test_clean_file_with_aliases_passes_and_prints_a_summary(tmp_path: Path) -> None:
    (tmp_path / "smith-2019.yaml").write_text(VALID)
    result = validate(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "1 valid trials in 1 files" in result.output
    assert "clean, 0 warning(s)" in result.output


def test_warnings_do_not_fail(tmp_path: Path) -> None:
    text = VALID.replace("sd: 8.1", "sd: 0.1").replace("sd: 9.0", "sd: 0.2").replace("label: post, weeks: 12", "label: follow-up")
    (tmp_path / "smith-2019.yaml").write_text(text)
    result = validate(str(tmp_path), "--format", "json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["errors"] == []
    fields = {w["field"] for w in payload["warnings"]}
    assert {"outcomes[0].results.cbt.sd", "outcomes[0].timepoint", "outcomes[0].results"} <= fields


def test_user_vocabulary_extends_codes(tmp_path: Path) -> None:
    (tmp_path / "smith-2019.yaml").write_text(VALID.replace("approach: CBT", "approach: EMDR"))
    assert validate(str(tmp_path)).exit_code == 2
    vocab = tmp_path / "vocab.yml"
    vocab.write_text("approaches:\n  emdr: {kind: therapy, aliases: [eye movement desensitisation]}\n")
    result = validate(str(tmp_path / "smith-2019.yaml"), "--vocabulary", str(vocab))
    assert result.exit_code == 0, result.output


def test_bad_user_vocabulary_is_reported(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.yaml"
    vocab.write_text("approachs:\n  emdr: {kind: therapy}\n")
    (tmp_path / "smith-2019.yaml").write_text(VALID)
    result = validate(str(tmp_path / "smith-2019.yaml"), "--vocabulary", str(vocab))
    assert result.exit_code == 2
    assert f"{vocab}:1: approachs: unknown section; did you mean 'approaches'?" in result.output


def test_usage_errors_exit_2() -> None:
    assert validate(str(ROOT / "no-such-folder")).exit_code == 2
    assert validate(str(MALFORMED / "sd-zero.yaml"), "--format", "xml").exit_code == 2


def test_shipped_corpus_is_clean() -> None:
    result = validate(str(ROOT / "studies"), "--format", "json")
    assert result.exit_code == 0, result.output[:2000]
    payload = json.loads(result.stdout)
    assert payload["errors"] == []
    summary = payload["summary"]
    assert summary["trials"] == summary["files"] > 1000
    assert set(summary["by_condition"]) == {"depression", "ptsd", "panic", "gad", "ocd", "social-anxiety",
                                            "psychosis", "suicidality"}


def _assert_no_traceback(tmp_path: Path, content: bytes) -> None:
    folder = tmp_path / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "trial.yaml").write_bytes(content)
    result = validate(str(folder))
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "condition", "arms", "outcomes", "results", "mean", "sd", "n", "approach",
                         "timepoint", "label", "precomputed", "statistic", "comparisons", "g", "se", "x"]),
        children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=yaml_values)
def test_random_yaml_structures_never_crash(tmp_path: Path, value: object) -> None:
    import yaml

    _assert_no_traceback(tmp_path, yaml.safe_dump(value).encode())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_random_text_never_crashes(tmp_path: Path, text: str) -> None:
    _assert_no_traceback(tmp_path, text.encode("utf-8", errors="replace"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), cut=st.integers(0, len(VALID)))
def test_random_bytes_and_truncated_files_never_crash(tmp_path: Path, data: bytes, cut: int) -> None:
    _assert_no_traceback(tmp_path, data)
    _assert_no_traceback(tmp_path, VALID.encode()[:cut] + data)


@pytest.mark.parametrize("content", [
    b"a: " + b"x" * (2 * 1024 * 1024),
    b"[" * 50_000 + b"]" * 50_000,
    b"- " * 10_000 + b"1",
    b"a: &a [1]\nb: [*a, *a, *a]\n",
    b"\xff\xfe\x00\x00",
    b"id: x\n" * 3,
])
def test_hostile_inputs_never_crash(tmp_path: Path, content: bytes) -> None:
    _assert_no_traceback(tmp_path, content)


def test_a_folder_without_trial_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no trials here")
    result = validate(str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path}: (folder): no trial files found" in result.output
