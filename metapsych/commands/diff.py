"""``metapsych diff OLD NEW``: what changed between two reports (Markdown by default, or JSON)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from metapsych.analysis.diff import MAIN_KEYS
from metapsych.analysis.run import SCHEMA_VERSION
from metapsych.errors import clip


def run(old: Path, new: Path, *, as_json: bool = False) -> int:
    """Print the diff of two results.json files; InputError (exit 2) for a missing or invalid file."""
    from metapsych.analysis.diff import diff_markdown, diff_results

    diff = diff_results(read_results(old), read_results(new))
    sys.stdout.write(json.dumps(diff, indent=2, sort_keys=True) + "\n" if as_json else diff_markdown(diff))
    return 0


class _Constant(ValueError):
    """NaN, Infinity or -Infinity in a JSON text: Python reads them, the JSON standard does not."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _refuse_constant(name: str) -> float:
    raise _Constant(name)


_CONSTANT_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|(NaN|-?Infinity)')


def _constant_line(text: str) -> int | None:
    """The line of the first NaN or Infinity outside a string (the JSON reader does not say where)."""
    found = next((m for m in _CONSTANT_OR_STRING.finditer(text) if m.group(1)), None)
    return None if found is None else text[: found.start()].count("\n") + 1


def read_results(path: Path) -> dict:
    """A results document from disk (a results.json, or a report folder holding one), checked to have the
    shape ``diff`` reads, so that a wrong file is a located error, never a crash."""
    from metapsych.data.files import read_input
    from metapsych.errors import DataError, Problem

    def bad(line: int | None, problem: str, field: str = "(file)") -> DataError:
        return DataError(Problem(str(path), line, field, problem, "a results.json written by metapsych run"))

    if path.is_dir() and (path / "results.json").is_file():
        path = path / "results.json"
    if path.is_dir():
        raise bad(None, "a folder without results.json")
    raw = read_input(path, "a results.json written by metapsych run")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except _Constant as exc:
        raise bad(_constant_line(raw.decode("utf-8")),
                  f"{exc.name} is not JSON (results.json writes null where a number is missing)") from None
    except UnicodeDecodeError:
        raise bad(None, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise bad(exc.lineno, f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise bad(None, "JSON nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise bad(None, f"invalid JSON: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("cells"), list) or "inputs" not in value:
        raise bad(1, "not a results document (no 'cells' list or 'inputs')")
    problems = shape_problems(value)
    if problems:
        raise DataError([Problem(str(path), None, field, problem, expected) for field, problem, expected in problems])
    return value


def shape_problems(doc: dict) -> list[tuple[str, str, str]]:
    """(field, problem, expected) for every value ``diff`` reads that has the wrong type."""
    found: list[tuple[str, str, str]] = []

    def need(value: object, kinds: tuple[type, ...], field: str, expected: str) -> bool:
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            found.append((field, f"got {_shown(value)}", expected))
        return ok

    version = doc.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        found.append(("schema_version", f"schema version {_shown(version)} is not supported",
                      f"schema version {SCHEMA_VERSION}, as this metapsych writes"))
    need(doc.get("metapsych_version"), (str, type(None)), "metapsych_version", "text")
    if need(doc["inputs"], (dict,), "inputs", "a mapping"):
        trials = doc["inputs"].get("trials", {})
        if need(trials, (dict,), "inputs.trials", "a mapping of trial id to file hash"):
            for trial, sha in trials.items():
                need(sha, (str,), f"inputs.trials.{trial}", "a file hash")
    if need(doc.get("trials", {}), (dict,), "trials", "a mapping of trial id to trial"):
        for trial, info in doc.get("trials", {}).items():
            need(info, (dict, type(None)), f"trials.{trial}", "a mapping")
    for i, cell in enumerate(doc["cells"]):
        _cell_problems(cell, f"cells[{i}]", need)
    if need(doc.get("overview", {}), (dict,), "overview", "a mapping of condition to ranking rows"):
        for condition, rows in doc.get("overview", {}).items():
            if need(rows, (list,), f"overview.{condition}", "a list of ranking rows"):
                for j, row in enumerate(rows):
                    where = f"overview.{condition}[{j}]"
                    if need(row, (dict,), where, "a ranking row"):
                        for key in ("approach", "comparator", "time", "cell"):
                            need(row.get(key), (str,), f"{where}.{key}", "text")
                        need(row.get("rank"), (int, float, type(None)), f"{where}.rank", "a number")
    return found


def _cell_problems(cell: object, where: str, need) -> None:  # type: ignore[no-untyped-def]
    if not need(cell, (dict,), where, "a cell mapping"):
        return
    need(cell.get("id"), (str,), f"{where}.id", "the cell id (text)")  # type: ignore[union-attr]
    need(cell.get("status"), (str, type(None)), f"{where}.status", "text")  # type: ignore[union-attr]
    need(cell.get("k"), (int, float, type(None)), f"{where}.k", "a number")  # type: ignore[union-attr]
    main = cell.get("main")  # type: ignore[union-attr]
    if need(main, (dict, type(None)), f"{where}.main", "a model mapping") and main:
        for key in MAIN_KEYS:
            need(main.get(key), (int, float, type(None)), f"{where}.main.{key}", "a number or null")


def _shown(value: object) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return clip(text, 40)
