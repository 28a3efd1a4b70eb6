"""Session 5 review: bad input found by an adversarial pass over every command never crashes, never hangs and
never corrupts. Each case exits 2 with a message naming the file (and row and field where there is one).

Cases that would hang on a regression (a pipe or /dev/zero read as input) run in a subprocess with a timeout.
The tests at the end are config values that would be accepted and then silently do nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metapsych.cli import app

runner = CliRunner()
METAPSYCH = [sys.executable, "-m", "metapsych.cli"]
IMPORT = ("study,condition_arm1,condition_arm2,mean_arm1,sd_arm1,n_arm1,mean_arm2,sd_arm2,n_arm2\n"
          "A,cbt,wl,10,5,20,12,5,20\nB,cbt,cau,9,4,30,12,5,30\n")


def clean(output: str) -> str:
    """The output on one line (messages wrap at the terminal width), checked to hold no traceback."""
    assert "Traceback" not in output and "internal error" not in output, output
    return " ".join(output.split())


@pytest.fixture
def review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh review repository (one example trial), as the working directory."""
    assert runner.invoke(app, ["init", str(tmp_path / "review")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "review")
    return tmp_path / "review"


# -- inputs that are not regular files: refused before they are read ------------------------------------------
NOT_REGULAR = [
    (["pool", "{}"], "in.csv"), (["network", "{}"], "in.csv"), (["effects", "{}"], "in.csv"),
    (["import", "metapsy", "{}", "--condition", "depression"], "in.csv"), (["diff", "{}", "{}"], "in.json"),
]


@pytest.mark.parametrize("args, name, kind",
                         [(a, n, "fifo") for a, n in NOT_REGULAR] + [(["pool", "{}"], "in.csv", "dev-zero")],
                         ids=[a[0] for a, _ in NOT_REGULAR] + ["pool-dev-zero"])
def test_a_pipe_or_device_as_input_is_refused_not_read(tmp_path: Path, args: list[str], name: str, kind: str) -> None:
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block for ever
    else:
        path.symlink_to("/dev/zero")  # reading it would never end
    done = subprocess.run([*METAPSYCH, *(a.format(name) for a in args)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert f"{name}: (file): is a pipe, socket or device, not a regular file" in clean(done.stderr)


@pytest.mark.parametrize("command", [["validate"], ["run", "--quiet"]])
def test_a_trial_file_that_is_a_pipe_is_an_error_not_skipped(review: Path, command: list[str]) -> None:
    os.mkfifo(review / "studies" / "pipe-2020.yaml")
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "studies/pipe-2020.yaml: (file): a pipe, socket or device, not a regular file" in clean(result.output)
    assert not (review / "reports").exists()


def test_an_oversized_input_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from metapsych.data.files import read_input
    from metapsych.errors import DataError

    (tmp_path / "big.csv").write_text("yi,vi\n" * 10)
    with pytest.raises(DataError, match="over the 16 byte limit"):
        read_input(tmp_path / "big.csv", "a CSV", limit=16)


def test_a_gzip_bomb_is_refused(review: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("metapsych.data.metapsy.MAX_INPUT_BYTES", 1000)
    (review / "db.csv.gz").write_bytes(gzip.compress((IMPORT + "C,cbt,wl,1,1,9,1,1,9\n" * 100).encode()))
    result = runner.invoke(app, ["import", "metapsy", "db.csv.gz", "--condition", "depression"])
    assert result.exit_code == 2
    assert "db.csv.gz: (file): decompresses to over 1000 bytes" in clean(result.output)


# -- symbolic link loops ------------------------------------------------------------------------------------
@pytest.mark.parametrize("link, args, message", [
    ("studies", ["run", "--quiet"], "studies: a symbolic link that loops"),
    ("configs/default.yaml", ["run", "--quiet"], "configs/default.yaml: a symbolic link that loops"),
    ("reports", ["run", "--quiet"], "--out reports: is a link to reports, which does not exist"),
    ("studies", ["validate"], "studies: no such file or folder"),
])
def test_a_link_loop_is_a_usage_error(review: Path, link: str, args: list[str], message: str) -> None:
    target = review / link
    if target.is_dir():
        for child in sorted(target.rglob("*"), reverse=True):
            child.unlink() if child.is_file() else child.rmdir()
        target.rmdir()
    elif target.exists():
        target.unlink()
    target.symlink_to(target.name)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in clean(result.output)


def test_a_dangling_report_link_names_the_option_not_a_temporary_folder(review: Path) -> None:
    (review / "reports").symlink_to("gone")
    result = runner.invoke(app, ["run", "--quiet"])
    assert result.exit_code == 2
    assert "--out reports: is a link to gone, which does not exist" in clean(result.output)


# -- CSV inputs -------------------------------------------------------------------------------------------------
def test_pool_diagnostics_name_the_row_without_a_cluster_label(review: Path) -> None:
    (review / "a.csv").write_text("study,yi,vi,cluster\nA,0.5,0.04,c1\nB,0.3,0.02,\nC,0.2,0.05,c2\n")
    result = runner.invoke(app, ["pool", "a.csv", "--diagnostics"])
    assert result.exit_code == 2
    assert "a.csv:3: cluster: no cluster label (expected a label for every row, or no cluster column)" in clean(
        result.output)


def test_network_reference_that_is_no_treatment_names_the_option_and_the_file(review: Path) -> None:
    (review / "a.csv").write_text("study,treat1,treat2,yi,vi\nA,cbt,wl,0.5,0.04\nB,cbt,cau,0.3,0.02\n")
    result = runner.invoke(app, ["network", "a.csv", "--reference", "emdr"])
    assert result.exit_code == 2
    assert "--reference: 'emdr' is not a treatment in a.csv (expected one of cau, cbt, wl)" in clean(result.output)


def test_effects_out_that_cannot_be_written_names_the_option(review: Path) -> None:
    (review / "a.csv").write_text("study,mean_arm1,sd_arm1,n_arm1,mean_arm2,sd_arm2,n_arm2\nA,10,5,20,12,5,20\n")
    (review / "file").write_text("x")
    result = runner.invoke(app, ["effects", "a.csv", "--out", "file/out.csv"])
    assert result.exit_code == 2
    assert "error: --out file/out.csv: " in clean(result.output)


def test_import_of_a_trial_that_fails_validation_names_the_database_rows(review: Path) -> None:
    (review / "db.csv").write_text(IMPORT.replace("study,", "study,year,").replace("A,", "A,2019,")
                                   .replace("B,", "B,-5,") + "B,-5,cbt,wl,9,4,30,12,5,30\n")
    result = runner.invoke(app, ["import", "metapsy", "db.csv", "--condition", "depression", "--out", "new"])
    assert result.exit_code == 2
    assert ("db.csv:3: year: year -5 is not plausible (trial depression-b from rows 3, 4) (expected a publication "
            "year 1900-") in clean(result.output)
    assert not (review / "new").exists()


def test_import_of_a_header_without_rows_is_an_error(review: Path) -> None:
    (review / "db.csv").write_text(IMPORT.splitlines()[0] + "\n")
    result = runner.invoke(app, ["import", "metapsy", "db.csv", "--condition", "depression"])
    assert result.exit_code == 2
    assert "db.csv:2: (rows): the file has a header but no data rows" in clean(result.output)


def test_import_of_a_very_long_study_label_gives_a_usable_file_name(review: Path) -> None:
    (review / "db.csv").write_text(IMPORT.replace("A,cbt", "x" * 5000 + ",cbt"))
    result = runner.invoke(app, ["import", "metapsy", "db.csv", "--condition", "depression", "--out", "new"])
    assert result.exit_code == 0, result.output
    assert sorted(len(p.name) for p in (review / "new").iterdir()) == [len("depression-b.yaml"), 116]


def test_diff_of_json_with_a_number_too_long_to_read_is_an_input_error(review: Path) -> None:
    (review / "r.json").write_text('{"cells": [], "inputs": {}, "schema_version": ' + "9" * 5000 + "}")
    result = runner.invoke(app, ["diff", "r.json", "r.json"])
    assert result.exit_code == 2
    assert "r.json: (file): invalid JSON: Exceeds the limit" in clean(result.output)


# -- an interrupted run ---------------------------------------------------------------------------------------
def tree(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(path.relative_to(folder).as_posix().encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_a_run_killed_while_it_writes_leaves_the_previous_report_or_the_new_one(review: Path) -> None:
    assert runner.invoke(app, ["run", "--quiet"]).exit_code == 0
    before = tree(review / "reports")
    trial = review / "studies" / "example-2019.yaml"
    trial.write_text(trial.read_text().replace("mean: 14.2", "mean: 14.9"))
    process = subprocess.Popen([*METAPSYCH, "run", "--quiet", "--force"], cwd=review, stderr=subprocess.DEVNULL)
    time.sleep(0.8)  # somewhere in the analysis or the write, depending on the machine's load
    process.send_signal(signal.SIGKILL)
    process.wait()
    after_kill = tree(review / "reports")
    result = runner.invoke(app, ["run", "--quiet"])
    assert result.exit_code == 0, result.output
    assert after_kill in (before, tree(review / "reports"))
    assert not [p.name for p in review.iterdir() if p.name.startswith(".reports")]


# -- config values that would be accepted and then silently do nothing ---------------------------------------
CONFIG = "analyses:\n  - name: main\n    comparators: each-control\n"


def test_an_analysis_with_no_time_points_is_a_config_error(tmp_path: Path) -> None:
    from metapsych.analysis.config import load_config
    from metapsych.errors import ConfigError

    (tmp_path / "default.yaml").write_text(CONFIG + "    time: []\n")
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.time"):
        load_config(tmp_path / "default.yaml")


def test_a_network_without_reference_candidates_is_a_config_error(tmp_path: Path) -> None:
    from metapsych.analysis.config import load_config
    from metapsych.errors import ConfigError

    (tmp_path / "default.yaml").write_text(CONFIG + "network: {enabled: true, reference: []}\n")
    with pytest.raises(ConfigError, match=r"network\.reference"):
        load_config(tmp_path / "default.yaml")


def test_a_moderator_that_names_no_column_is_a_config_error(review: Path) -> None:
    config = review / "configs" / "default.yaml"
    config.write_text(config.read_text().replace("variables: [sessions, year, rob, percent_women, mean_age]",
                                                 "variables: [no_such_column]"))
    result = runner.invoke(app, ["run", "--quiet"])
    assert result.exit_code == 2
    assert "configs/default.yaml" in result.output and "moderators.variables[0]" in result.output
