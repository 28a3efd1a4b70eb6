"""`metapsych diff OLD NEW`: Markdown or JSON on stdout; exit 2 for missing or invalid files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from metapsych.cli import app


def results(trials: dict, estimate: float) -> dict:
    main = {"k": 2, "estimate": estimate, "ci_lower": estimate - 0.3, "ci_upper": estimate + 0.3, "tau2": 0.0,
            "I2": 0.0}
    return {"metapsych_version": "0.1.0", "inputs": {"trials": trials, "config_sha256": "x"}, "trials": {},
            "cells": [{"id": "ptsd.cbt.vs.waitlist.post", "status": "ok", "k": 2, "main": main}], "overview": {}}


def write(tmp_path: Path, name: str, value: object) -> Path:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return path


def test_markdown_and_json(tmp_path: Path) -> None:
    old = write(tmp_path, "old.json", results({"a": "1"}, 0.5))
    new = write(tmp_path, "new.json", results({"a": "1", "b": "2"}, 0.2))
    out = CliRunner().invoke(app, ["diff", str(old), str(new)])
    assert out.exit_code == 0
    assert "Trials added (1): b" in out.stdout and "CI now includes zero" in out.stdout
    out = CliRunner().invoke(app, ["diff", str(old), str(new), "--json"])
    assert out.exit_code == 0
    diff = json.loads(out.stdout)
    assert diff["trials"]["added"] == [{"trial": "b", "study": None}] and len(diff["conclusions"]) == 1


def test_bad_files_exit_2_with_the_file_named(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", results({}, 0.1))
    cases = {"missing.json": None, "broken.json": '{"cells": [\n', "other.json": {"not": "results"}}
    for name, content in cases.items():
        path = tmp_path / name if content is None else write(tmp_path, name, content)
        out = CliRunner().invoke(app, ["diff", str(good), str(path)])
        assert out.exit_code == 2, name
        assert str(path) in out.stderr and "Traceback" not in out.output


def test_wrong_shapes_are_located_errors_not_crashes(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", results({}, 0.1))
    cases = {
        '{"cells": [5], "inputs": {}}': "cells[0]: got 5",
        '{"cells": [{}], "inputs": {}}': "cells[0].id: got null",
        '{"cells": [], "inputs": 3}': "inputs: got 3",
        '{"cells": [], "inputs": {"trials": 5}}': "inputs.trials: got 5",
        '{"cells": [], "inputs": {}, "trials": [1]}': "trials: got list",
        '{"cells": [{"id": "a", "main": 5}], "inputs": {}}': "cells[0].main: got 5",
        '{"cells": [{"id": "a", "main": {"estimate": "x"}}], "inputs": {}}': 'cells[0].main.estimate: got "x"',
        '{"cells": [], "inputs": {}, "overview": {"d": [{"approach": 1}]}}': "overview.d[0].approach: got 1",
        '{"cells": [], "inputs": {}, "schema_version": 99}': "schema_version: schema version 99 is not supported",
        "[" * 100_000 + "]" * 100_000: "(file): JSON nested too deeply",
    }
    for i, (content, message) in enumerate(cases.items()):
        path = write(tmp_path, f"bad{i}.json", content)
        for args in ([str(good), str(path)], [str(path), str(good)]):
            out = CliRunner().invoke(app, ["diff", *args])
            assert out.exit_code == 2, (content, out.output)
            assert f"{path}: {message}" in out.stderr, out.stderr
            assert "Traceback" not in out.output and "internal error" not in out.output


def test_report_folders_can_be_compared(tmp_path: Path) -> None:
    for name, estimate in (("old", 0.5), ("new", 0.2)):
        (tmp_path / name).mkdir()
        write(tmp_path / name, "results.json", results({"a": "1"}, estimate))
    out = CliRunner().invoke(app, ["diff", str(tmp_path / "old"), str(tmp_path / "new")])
    assert out.exit_code == 0, out.output
    assert "CI now includes zero" in out.stdout
    out = CliRunner().invoke(app, ["diff", str(tmp_path / "old"), str(tmp_path)])
    assert out.exit_code == 2 and "a folder without results.json" in out.stderr


def test_nan_and_infinity_are_refused_where_they_stand(tmp_path: Path) -> None:
    """Python's JSON reader takes NaN and Infinity; the table then showed "nan" and --json wrote -Infinity."""
    good = write(tmp_path, "good.json", results({}, 0.1))
    doc = results({"a": "NaN Infinity"}, 0.1)  # the words inside a string come first and do not count
    text = json.dumps(doc, indent=1).replace('"tau2": 0.0', '"tau2": NaN')
    out = CliRunner().invoke(app, ["diff", str(good), str(write(tmp_path, "nan.json", text))])
    line = text[: text.index('"tau2": NaN')].count("\n") + 1
    assert out.exit_code == 2 and f"nan.json:{line}: (file): NaN is not JSON" in out.stderr, out.output
