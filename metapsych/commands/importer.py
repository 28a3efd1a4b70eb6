"""``metapsych import metapsy``: turn a Metapsy database CSV into one trial file per trial.

Nothing is written when the arguments are wrong or a target file exists (without ``--overwrite``); the
trials are validated before they are written; every row that could not be converted is listed.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from metapsych.errors import DataError, InputError, Problem


def run_metapsy(file: Path, out: Path, condition: str | None = None, overwrite: bool = False) -> int:
    """Import ``file`` into ``out``; returns the exit code (0, also when rows were listed as not converted)."""
    from metapsych.data.load import default_vocabulary, validate_studies
    from metapsych.data.metapsy import read_metapsy_csv
    from metapsych.data.metapsy_import import import_metapsy
    from metapsych.data.trial_writer import write_trials

    if not file.exists():  # anything else that is no regular file is refused by the reader, unread
        raise InputError(f"{file}: no such file (expected a Metapsy database CSV)")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a folder (expected the folder of trial files, e.g. studies)")
    vocabulary = default_vocabulary()
    code = resolve_condition(file, condition, vocabulary)
    frame = read_metapsy_csv(file)
    if frame.empty:
        raise DataError(Problem(str(file), 2, "(rows)", "the file has a header but no data rows",
                                "one row per comparison"))
    result = import_metapsy(frame, code, vocabulary, database=file.stem)
    if not result.trials and result.skipped:  # nothing to write: every row is a problem to fix (exit 2)
        raise DataError(result.skipped)
    targets = [out / f"{t['id']}.yaml" for t in result.trials]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        shown = ", ".join(str(p) for p in existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise InputError(f"{len(existing)} trial file(s) already exist: {shown} (use --overwrite to replace them)")
    with tempfile.TemporaryDirectory() as tmp:
        staged = write_trials(result.trials, Path(tmp), comment=f"Imported from {file.name} by metapsych import metapsy")
        report = validate_studies(Path(tmp), vocabulary)
        if report.errors:
            raise DataError(at_source_rows(report.errors, result.trials, file))
        out.mkdir(parents=True, exist_ok=True)
        for path in staged:
            shutil.copyfile(path, out / path.name)
    _print_summary(file, out, result)
    return 0


def at_source_rows(problems: list[Problem], trials: list[dict], file: Path) -> list[Problem]:
    """Problems found in the staged trial files, pointed at the database rows each trial came from: the
    staged files are temporary, so a message naming them would point at nothing."""
    rows = {trial["id"]: trial.get("source", {}).get("rows", []) for trial in trials}
    located = []
    for problem in problems:
        trial_id = Path(problem.file).stem
        lines = rows.get(trial_id, [])
        more = f" (trial {trial_id} from rows {', '.join(map(str, lines))})" if len(lines) > 1 else ""
        located.append(Problem(str(file), lines[0] if lines else None, problem.field,
                               f"{problem.problem}{more}", problem.expected, problem.severity))
    return located


def resolve_condition(file: Path, condition: str | None, vocabulary) -> str:  # type: ignore[no-untyped-def]
    """The condition code from ``--condition``, or from a word of the file name (``metapsy-ptsd-psyctr``)."""
    from metapsych.data.vocabulary import UnknownCode

    if condition is not None:
        try:
            return vocabulary.resolve("condition", condition)
        except UnknownCode as exc:
            raise InputError(f"--condition: {exc} (expected {exc.expected})") from None
    words = [w for w in re.split(r"[^a-z0-9]+", file.stem.lower()) if w]
    for word in words:
        code = vocabulary.lookup("condition", word)
        if code:
            return code
    raise InputError(f"{file}: cannot tell the condition from the file name; give --condition "
                     f"(one of {', '.join(vocabulary.choices('condition'))})")


def _print_summary(file: Path, out: Path, result) -> None:  # type: ignore[no-untyped-def]
    sys.stdout.write(f"{file}: {len(result.trials)} trial file(s) written to {out}/ from "
                     f"{result.rows_converted} row(s)\n")
    if result.skipped:
        sys.stdout.write(f"{len(result.skipped)} row(s) not converted:\n")
        for problem in result.skipped:
            sys.stdout.write(problem.format() + "\n")
