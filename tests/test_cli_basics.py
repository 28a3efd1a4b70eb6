"""The CLI's start-up promises: fast help, no heavy imports, no traceback for unexpected input."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from metapsych.cli import app

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("validate", "import", "effects", "pool", "network", "run", "diff", "init"):
        assert command in result.output


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from metapsych.cli import app\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "heavy = [m for m in ('pandas', 'scipy', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_option_is_a_usage_error_without_traceback() -> None:
    result = runner.invoke(app, ["pool", "--no-such-option"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
