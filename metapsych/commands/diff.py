"""``metapsych diff OLD NEW``: what changed between two reports (Markdown by default, or JSON)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def run(old: Path, new: Path, *, as_json: bool = False) -> int:
    """Print the diff of two results.json files; InputError (exit 2) for a missing or invalid file."""
    from metapsych.analysis.diff import diff_markdown, diff_results

    diff = diff_results(read_results(old), read_results(new))
    sys.stdout.write(json.dumps(diff, indent=2, sort_keys=True) + "\n" if as_json else diff_markdown(diff))
    return 0


def read_results(path: Path) -> dict:
    """A results document from disk, checked just enough to be compared."""
    from metapsych.errors import DataError, Problem

    def bad(line: int | None, problem: str) -> DataError:
        return DataError(Problem(str(path), line, "(file)", problem, "a results.json written by metapsych run"))

    if not path.is_file():
        raise bad(None, "no such file")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise bad(None, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise bad(exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(value, dict) or not isinstance(value.get("cells"), list) or "inputs" not in value:
        raise bad(1, "not a results document (no 'cells' list or 'inputs')")
    return value
