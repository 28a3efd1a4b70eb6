"""A fuzzer's pass over the file commands: every malformed input found while hardening the CLI exits with the
contract's code and a message naming the file, line and field (or the path), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from metapsych.cli import app

runner = CliRunner()
EFFECTS = "study,mean_arm1,sd_arm1,n_arm1,mean_arm2,sd_arm2,n_arm2\nA,10,5,20,12,5,20\nB,9,4,30,12,5,30\n"
IMPORT = ("study,condition_arm1,condition_arm2,mean_arm1,sd_arm1,n_arm1,mean_arm2,sd_arm2,n_arm2\n"
          "A,cbt,wl,10,5,20,12,5,20\nB,cbt,cau,9,4,30,12,5,30\n")
NETWORK = "study,treat1,treat2,yi,vi\nA,cbt,wl,0.5,0.04\nB,cbt,cau,0.3,0.02\nC,cau,wl,0.2,0.05\n"

# (case, files, arguments, exit code, text the output must contain)
CASES = [
    ("pool-huge-effect", {"a.csv": "yi,vi\n1e300,0.1\n0.2,0.1\n"}, ["pool", "a.csv"], 2,
     "a.csv:2: yi: 1e300 is implausibly large"),
    ("pool-tiny-variance", {"a.csv": "yi,vi\n1e9,1e-300\n-1e9,1e-300\n0,1\n"},
     ["pool", "a.csv", "--estimator", "DL"], 2, "a.csv:2: vi: 1e-300 is implausibly small"),
    ("network-level", {"a.csv": NETWORK}, ["network", "a.csv", "--level", "2"], 2, "2.0 is outside (0, 1)"),
    ("effects-no-data-columns", {"a.csv": "a,b\n1,2\n"}, ["effects", "a.csv"], 2,
     "a.csv:1: (header): no effect-size data columns among: a, b"),
    ("effects-header-only", {"a.csv": "study,mean_arm1\n"}, ["effects", "a.csv"], 2,
     "a.csv:2: (rows): the file has a header but no data rows"),
    ("effects-huge", {"a.csv": EFFECTS.replace("10,5,20", "1e308,1e200,20")}, ["effects", "a.csv"], 2,
     "a.csv:2: mean_arm1: 1e308 is implausibly large"),
    ("effects-out-is-a-folder", {"a.csv": EFFECTS, "o/x": ""}, ["effects", "a.csv", "--out", "o"], 2,
     "--out o: is a folder"),
    ("import-column-twice", {"a.csv": IMPORT.replace("study,condition_arm1", "study,study")},
     ["import", "metapsy", "a.csv", "--condition", "depression"], 2, "a.csv:1: study: column appears twice"),
    ("import-out-is-a-file", {"a.csv": IMPORT, "o": "x"},
     ["import", "metapsy", "a.csv", "--condition", "depression", "--out", "o"], 2, "--out o: is a file"),
    ("init-under-a-file", {"f": "x"}, ["init", "f/review"], 2, "f/review: not a directory"),
    ("effects-out-under-a-file", {"a.csv": EFFECTS, "e.csv": "x"}, ["effects", "a.csv", "--out", "e.csv/x.csv"], 2,
     "--out e.csv/x.csv: e.csv is a file, not a folder"),
]


def test_init_on_a_dangling_link_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It said 'file exists' for a link to nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "l").symlink_to(tmp_path / "nowhere")
    result = runner.invoke(app, ["init", "l"])
    assert result.exit_code == 2 and "l: is a link to" in result.stderr and "which does not exist" in result.stderr


@pytest.mark.parametrize("files, args, code, text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict,
                                          args: list[str], code: int, text: str) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert text in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


def test_an_import_with_huge_numbers_lists_the_row_and_does_not_crash(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.csv").write_text(IMPORT.replace("10,5,20", "1e308,1e200,20"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["import", "metapsy", "a.csv", "--condition", "depression"])
    assert result.exit_code == 0, result.output
    assert "a.csv:2: sd_arm1: row not converted: 1e200 is implausibly large" in result.output


CONFIG = "analyses:\n  - name: main\n    comparators: each-control\n"
CONFIG_CASES = [
    ("min_studies: true\n" + CONFIG, "config.yaml:1: min_studies: got true (expected a whole number)"),
    ("model: {level: 95}\n" + CONFIG, "config.yaml:1: model.level: got 95 (expected a number less than 1)"),
    ("model:\n" + CONFIG, "config.yaml:1: model: got null (expected a mapping (key: value))"),
    ("effect: {cer: '0.2'}\n" + CONFIG, "config.yaml:1: effect.cer: got '0.2' (expected a number)"),
    ("model: {knha: 1}\n" + CONFIG, "config.yaml:1: model.knha: got 1 (expected true or false)"),
    ("dependency: {rho: 1}\n" + CONFIG,  # a singular within-trial covariance: an internal error before
     "config.yaml:1: dependency.rho: got 1 (expected a number less than 1)"),
    ("sensitivity: true\n", "config.yaml:1: analyses: required key is missing"),
    (CONFIG + "    controls: [wl]\n",
     "config.yaml:4: analyses[0].controls[0]: 'wl' is an alias; the config needs the approach code 'waitlist'"),
    (CONFIG + "    conditions: [depresion]\n",
     "config.yaml:4: analyses[0].conditions[0]: unknown condition 'depresion'; did you mean 'depression'?"),
    (CONFIG + "network: {reference: [nonexistent]}\n",
     "config.yaml:4: network.reference[0]: unknown approach 'nonexistent'"),
    (CONFIG + "moderators: {variables: [year, sesions]}\n",
     "config.yaml:4: moderators.variables[1]: unknown moderator 'sesions'; did you mean 'sessions'?"),
    (CONFIG + "    conditions: []\n",  # selected nothing: 8 cells instead of 18, exit 0
     "config.yaml:4: analyses[0].conditions: got an empty list (expected at least 1 item(s))"),
    (CONFIG + "    controls: [waitlist, cbt]\n",
     "config.yaml:4: analyses[0].controls[1]: 'cbt' is a therapy approach, not a control"),
    (CONFIG + "    approaches: [waitlist]\n",
     "config.yaml:4: analyses[0].approaches[0]: 'waitlist' is a control, not an approach tested against one"),
    (CONFIG + "moderators: {variables: [year, yi]}\n",  # regressed the effects on themselves: R^2 100%
     "config.yaml:4: moderators.variables[1]: moderator 'yi': is the effect size or a statistic it is computed"),
]


@pytest.mark.parametrize("text, message", CONFIG_CASES)
def test_config_problems_are_located_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     text: str, message: str) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "review")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "review")
    (tmp_path / "review" / "config.yaml").write_text(text)
    result = runner.invoke(app, ["run", "--quiet", "--config", "config.yaml"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "review" / "reports").exists()


def test_codes_from_the_reviews_own_vocabulary_are_accepted(tmp_path: Path) -> None:
    from metapsych.analysis.config import load_config

    (tmp_path / "vocabulary.yaml").write_text("approaches:\n  emdr: {kind: therapy}\n")
    (tmp_path / "default.yaml").write_text(CONFIG + "    approaches: [emdr, cbt]\n")
    assert load_config(tmp_path / "default.yaml").analyses[0].approaches == ["emdr", "cbt"]


@pytest.mark.parametrize("command", [["validate", "studies"], ["run", "--quiet"]])
def test_a_broken_trial_link_is_an_error_not_a_smaller_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              command: list[str]) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "review")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "review")
    (tmp_path / "review" / "studies" / "gone-2020.yaml").symlink_to(tmp_path / "nowhere.yaml")
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "studies/gone-2020.yaml: (file): broken link to" in result.output
    assert not (tmp_path / "review" / "reports").exists()


def test_run_on_an_empty_trial_folder_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "review")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "review")
    (tmp_path / "review" / "studies" / "example-2019.yaml").unlink()
    result = runner.invoke(app, ["run", "--quiet"])
    assert result.exit_code == 2 and "studies: no trial files found" in result.stderr
    assert not (tmp_path / "review" / "reports").exists()
