"""Which files under a trial folder are trial files, and reading one input file safely (no parsing: cheap
enough for start-up checks)."""

from __future__ import annotations

import stat
from pathlib import Path

from metapsych.errors import DataError, InputError, Problem

SUFFIXES = (".yaml", ".yml")
#: input files (CSV, results.json) above this size are refused before they are read; the largest Metapsy
#: database is a few MB, so anything near this is a wrong file, and reading it would exhaust the memory
MAX_INPUT_BYTES = 256 * 1024 * 1024


def trial_files(path: Path) -> list[Path]:
    """The trial files under ``path`` (a file or a folder, searched recursively), sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        problem = "not a regular file or folder" if path.exists() else "no such file or folder"
        raise InputError(f"{path}: {problem} (expected a trial file or a folder of trial files)")
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
                  and not p.name.startswith("."))


def read_input(path: Path, expected: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the input file ``path``, or a DataError naming it.

    Refused before reading: a path that is missing or a link loop, a folder, anything that is not a regular
    file (reading a pipe blocks for ever, reading ``/dev/zero`` never ends) and a file over ``limit`` bytes.
    """
    file = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a pipe, socket or device"
            raise DataError(Problem(file, None, "(file)", f"is {kind}, not a regular file", expected))
        if info.st_size > limit:
            raise DataError(Problem(file, None, "(file)", f"file is {info.st_size} bytes, over the {limit} byte "
                                    "limit", expected))
        return path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DataError(Problem(file, None, "(file)", f"cannot read file: {reason}", expected)) from None
