"""Session 4 review: cli.main() ends the process with os._exit once the output is flushed. The exit status
and the output must be what the interpreter's own exit gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
import typer
from metapsych import cli

@cli.app.command("review-exit")
def review_exit(how: str) -> None:
    print("partial output " * 2000)  # more than a pipe buffer, still unflushed when main() exits
    if how == "typer":
        raise typer.Exit(3)
    if how == "text":
        raise SystemExit("stopped: a message")
    if how == "none":
        raise SystemExit(None)

sys.argv = ["metapsych", *sys.argv[1:]]
cli.main()
"""


def _main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("how", "status"), [("typer", 3), ("text", 1), ("none", 0), ("return", 0)])
def test_exit_status_and_flushed_output(how: str, status: int) -> None:
    done = _main("review-exit", how)
    assert done.returncode == status, done.stderr
    assert done.stdout == "partial output " * 2000 + "\n"
    assert ("stopped: a message" in done.stderr) == (how == "text")


def test_bad_input_exits_2_and_json_output_is_complete(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("yi,vi\nx,0.01\n")
    done = _main("pool", str(bad))
    assert done.returncode == 2 and "'x' is not a number" in done.stderr
    good = tmp_path / "good.csv"
    good.write_text("yi,vi\n0.1,0.01\n0.3,0.02\n0.5,0.03\n0.2,0.05\n")
    done = _main("pool", str(good), "--json", "--diagnostics")
    assert done.returncode == 0 and json.loads(done.stdout)["k"] == 4
