"""Which files under a trial folder are trial files (no parsing: cheap enough for start-up checks)."""

from __future__ import annotations

from pathlib import Path

from metapsych.errors import InputError

SUFFIXES = (".yaml", ".yml")


def trial_files(path: Path) -> list[Path]:
    """The trial files under ``path`` (a file or a folder, searched recursively), sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder (expected a trial file or a folder of trial files)")
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
                  and not p.name.startswith("."))
