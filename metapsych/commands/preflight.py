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
from pathlib import Path

from metapsych.errors import DataError, InputError, Problem

#: files that mark a folder as a metapsych report (the writer's manifest, the results document)
REPORT_MARKERS = ("manifest.json", "results.json")


def check_report_folder(out: Path, *, keep: tuple[Path, ...] = ()) -> None:
    """Raise InputError unless ``out`` is new, empty or an earlier report, and holds none of ``keep``."""
    expected = "a new or empty folder, or the folder of an earlier report"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a folder (expected {expected})")
    target = out.resolve()
    for path in keep:
        if target == path.resolve() or target in path.resolve().parents:
            what = "is" if target == path.resolve() else "holds"
            raise InputError(f"--out {out}: {what} {path}, which the report would replace (expected {expected})")
    if out.is_dir():
        _check_existing(out, expected)
    else:
        _check_parent(out)


def _check_existing(out: Path, expected: str) -> None:
    try:
        names = sorted(entry.name for entry in os.scandir(out))
    except OSError as exc:
        raise InputError(f"--out {out}: cannot read the folder: {exc.strerror} (expected {expected})") from None
    if names and not any(marker in names for marker in REPORT_MARKERS):
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise InputError(f"--out {out}: the folder holds files that are not a report ({shown}) and a run "
                         f"replaces the whole folder (expected {expected})")
    if not os.access(out.resolve().parent, os.W_OK):
        raise InputError(f"--out {out}: cannot write to {out.resolve().parent} (expected a writable folder)")


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
    broken = broken_links(studies)
    if broken:
        raise DataError([Problem(str(p), None, "(file)", f"broken link to {os.readlink(p)}", "an existing trial file")
                         for p in broken])
    if not trial_files(studies):
        raise InputError(f"{studies}: no trial files found (expected one {' or '.join(SUFFIXES)} file per trial)")


def broken_links(folder: Path) -> list[Path]:
    """Trial-file names under ``folder`` that are symbolic links to nothing (skipped by a plain listing)."""
    from metapsych.data.files import SUFFIXES

    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_symlink() and not p.exists())
