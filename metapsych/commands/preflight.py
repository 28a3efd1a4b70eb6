"""Checks ``metapsych run`` makes before any work: the trial folder holds trial files, and the output
folder may be replaced.

The report writer swaps the new report in for the old folder, so whatever ``--out`` names is replaced. The
checks refuse every target that is not a report: a file, a folder holding other files (``--out configs``
would otherwise delete the config), or a folder that holds the trials or the config, so that a slip of the
option can never destroy a review. An empty trial folder or a trial file that is a broken link would
otherwise give an empty report (exit 0) or a silently smaller one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from metapsych.errors import DataError, InputError, Problem, not_a_folder

#: files that mark a folder as a metapsych report (the writer's manifest, the results document)
REPORT_MARKERS = ("manifest.json", "results.json")
#: everything a report folder holds: its files, and its subfolders with the file types they hold
REPORT_FILES = frozenset(("CHANGES.md", "README.md", "index.html", "manifest.json", "results.csv", "results.json"))
REPORT_FOLDERS = {"cells": (".html",), "plots": (".png", ".svg")}
#: files an operating system's file browser leaves in folders it shows (no user's work)
OS_METADATA = re.compile(r"^(\.DS_Store|\._.*|Thumbs\.db|desktop\.ini)$", re.IGNORECASE)


def check_report_folder(out: Path, *, keep: tuple[Path, ...] = ()) -> None:
    """Raise InputError unless ``out`` is new, empty or an earlier report, and holds none of ``keep``."""
    expected = "a new or empty folder, or the folder of an earlier report"
    if why := not_a_folder(out):
        raise InputError(f"--out {out}: {why} (expected {expected})")
    target = resolved(out, "--out ")
    for path in keep:
        kept = resolved(path)
        if target == kept or target in kept.parents:
            what = "is" if target == kept else "holds"
            raise InputError(f"--out {out}: {what} {path}, which the report would replace (expected {expected})")
    if out.is_dir():
        _check_existing(out, expected)
    else:
        _check_parent(out)


def resolved(path: Path, option: str = "") -> Path:
    """``path`` with its links followed; InputError naming it when the links loop (``Path.resolve`` would
    raise a RuntimeError, which is no message for a user)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        raise InputError(f"{option}{path}: a symbolic link that loops (expected a file or folder, or a link to "
                         "one)") from None


def _check_existing(out: Path, expected: str) -> None:
    try:
        names = sorted(entry.name for entry in os.scandir(out))
    except OSError as exc:
        raise InputError(f"--out {out}: cannot read the folder: {exc.strerror} (expected {expected})") from None
    foreign = _foreign_entries(out, names) if any(marker in names for marker in REPORT_MARKERS) else names
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise InputError(f"--out {out}: the folder holds files that are not a report ({shown}) and a run "
                         f"replaces the whole folder (expected {expected})")
    if not os.access(out.resolve().parent, os.W_OK):
        raise InputError(f"--out {out}: cannot write to {out.resolve().parent} (expected a writable folder)")


def _foreign_entries(out: Path, names: list[str]) -> list[str]:
    """What a report's folder holds that no report writes (a user's file would go with the old report)."""
    foreign = [name for name in names
               if name not in REPORT_FILES and name not in REPORT_FOLDERS and not OS_METADATA.match(name)]
    for folder, suffixes in REPORT_FOLDERS.items():
        if folder in names:
            try:
                with os.scandir(out / folder) as entries:
                    foreign += sorted(f"{folder}/{entry.name}" for entry in entries if not OS_METADATA.match(entry.name)
                                      and not (entry.name.endswith(suffixes) and entry.is_file(follow_symlinks=False)))
            except OSError:
                foreign.append(folder)
    return foreign


def _check_parent(out: Path) -> None:
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"--out {out}: {parent} is a file, not a folder (expected a folder path)")
            if not os.access(parent, os.W_OK):
                raise InputError(f"--out {out}: cannot write to {parent} (expected a writable folder)")
            return


def check_trial_folder(studies: Path) -> None:
    """Raise when the trial folder holds no trial file, or a trial file name that is a broken link."""
    from metapsych.data.files import SUFFIXES, trial_files

    if not studies.is_dir():
        return  # a missing folder or a single trial file: the run command says what is wrong
    problems = unusable_trial_files(studies)
    if problems:
        raise DataError(problems)
    if not trial_files(studies):
        raise InputError(f"{studies}: no trial files found (expected one {' or '.join(SUFFIXES)} file per trial)")


def unusable_trial_files(folder: Path) -> list[Problem]:
    """Trial-file names under ``folder`` that a plain listing skips: links to nothing, and pipes or devices
    (a FIFO named ``x.yaml``, a link to ``/dev/zero``), which cannot be read as a file."""
    from metapsych.data.files import SUFFIXES

    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and not p.name.startswith(".")):
        if path.is_symlink() and not path.exists():
            problems.append(Problem(str(path), None, "(file)", f"broken link to {os.readlink(path)}",
                                    "an existing trial file"))
        elif not path.is_file() and not path.is_dir():
            problems.append(Problem(str(path), None, "(file)", "a pipe, socket or device, not a regular file",
                                    "a trial file"))
    return problems
