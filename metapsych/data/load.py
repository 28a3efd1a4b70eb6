"""Loading a folder of trial files: parse, validate and canonicalise every trial, collecting all problems.

``validate_studies`` never raises for problems in the files (it returns them, for ``metapsych validate``);
``load_studies`` raises one DataError listing every error, and otherwise returns the trials with their
vocabulary codes in canonical form.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from metapsych.data.checks import Checker
from metapsych.data.files import read_input, trial_files
from metapsych.data.schema import Trial
from metapsych.data.vocabulary import Vocabulary, load_vocabulary
from metapsych.data.yaml_io import MAX_BYTES, read_yaml_text
from metapsych.errors import DataError, InputError, Problem

USER_VOCABULARY = Path("configs") / "vocabulary.yaml"


@dataclass(frozen=True)
class LoadedTrial:
    """A validated trial with canonical codes, the file it came from and that file's content hash."""

    trial: Trial
    file: str
    sha256: str
    outcome_lines: tuple[int | None, ...]

    @property
    def id(self) -> str:
        """The trial id (the file stem)."""
        return self.trial.id


@dataclass(frozen=True)
class Trials:
    """The validated trials of a study folder, sorted by id, plus the warnings found while loading."""

    items: tuple[LoadedTrial, ...]
    vocabulary: Vocabulary
    warnings: tuple[Problem, ...] = ()
    files_checked: int = 0

    def __iter__(self) -> Iterator[LoadedTrial]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def by_id(self) -> dict[str, LoadedTrial]:
        """Trials keyed by id."""
        return {t.id: t for t in self.items}


@dataclass
class ValidationReport:
    """Everything ``metapsych validate`` reports: the valid trials and every problem (errors and warnings)."""

    trials: Trials
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that fail validation."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems that are reported but do not fail validation."""
        return [p for p in self.problems if p.severity == "warning"]


def default_vocabulary(extra: Path | None = None) -> Vocabulary:
    """The built-in vocabulary plus ``extra``, or plus ``configs/vocabulary.yaml`` when it exists."""
    if extra is None and USER_VOCABULARY.is_file():
        extra = USER_VOCABULARY
    return load_vocabulary(extra)


def validate_studies(path: Path, vocabulary: Vocabulary | None = None) -> ValidationReport:
    """Check every trial file under ``path``; returns the valid trials and all problems found."""
    vocabulary = vocabulary or default_vocabulary()
    files = trial_files(path)
    problems: list[Problem] = []
    loaded: dict[str, LoadedTrial] = {}
    for file in files:
        trial, found = check_file(file, vocabulary)
        problems += found
        if trial is None:
            continue
        if trial.id in loaded:
            problems.append(Problem(str(file), id_line(file), "id", f"duplicate trial id {trial.id!r}, "
                                    f"also in {loaded[trial.id].file}", "ids unique across all trial files"))
            continue
        loaded[trial.id] = trial
    items = tuple(sorted(loaded.values(), key=lambda t: t.id))
    warnings = tuple(p for p in problems if p.severity == "warning")
    return ValidationReport(Trials(items, vocabulary, warnings, len(files)), problems)


def load_studies(path: Path, vocabulary: Vocabulary | None = None) -> Trials:
    """Load and validate every trial under ``path``; raises DataError listing ALL errors."""
    report = validate_studies(Path(path), vocabulary)
    if report.errors:
        raise DataError(report.errors)
    return report.trials


def check_file(path: Path, vocabulary: Vocabulary) -> tuple[LoadedTrial | None, list[Problem]]:
    """Parse and check one trial file; the trial is None when it has errors."""
    file = str(path)
    try:
        raw = read_input(path, "a readable YAML file under 1 MiB", MAX_BYTES)
        doc = read_yaml_text(_decode(raw, file), file)
    except DataError as exc:
        return None, exc.problems
    checker = Checker(doc, vocabulary, path.stem)
    trial, salvaged = checker.parse()
    if trial is None:
        if salvaged is not None:
            checker.check(salvaged)
        return None, _unique(checker.problems)
    codes = checker.check(trial)
    if any(p.severity == "error" for p in checker.problems):
        return None, _unique(checker.problems)
    lines = tuple(doc.lines.get(("outcomes", i)) for i in range(len(trial.outcomes)))
    loaded = LoadedTrial(canonical(trial, codes), file, hashlib.sha256(raw).hexdigest(), lines)
    return loaded, _unique(checker.problems)


def canonical(trial: Trial, codes: dict) -> Trial:
    """The trial with every vocabulary value replaced by its canonical code."""
    arms = [arm.model_copy(update={"approach": codes["arms"][arm.id]["approach"],
                                   "format": codes["arms"][arm.id]["format"]}) for arm in trial.arms]
    outcomes = [o.model_copy(update={"rating": rating}) for o, rating in zip(trial.outcomes, codes["ratings"])]
    update: dict = {"condition": codes["condition"], "arms": arms, "outcomes": outcomes}
    if "rob" in codes and trial.risk_of_bias is not None:
        update["risk_of_bias"] = trial.risk_of_bias.model_copy(update={"overall": codes["rob"]})
    return trial.model_copy(update=update)


def _unique(problems: list[Problem]) -> list[Problem]:
    """Problems without repeats (a salvaged check may re-find a schema problem), sorted by line."""
    seen = dict.fromkeys(problems)
    return sorted(seen, key=lambda p: (p.line or 0))


def _decode(raw: bytes, file: str) -> str:
    if b"\x00" in raw:
        raise DataError(Problem(file, raw[: raw.index(b"\x00")].count(b"\n") + 1, "(file)",
                                "binary content (NUL byte)", "a UTF-8 YAML file"))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(Problem(file, raw[: exc.start].count(b"\n") + 1, "(file)", "not valid UTF-8 text",
                                "a UTF-8 YAML file")) from None


def id_line(path: Path) -> int | None:
    """The line of a trial file's top-level ``id:`` (for messages about the id)."""
    for number, line in enumerate(path.read_text(encoding="utf-8-sig", errors="replace").splitlines(), 1):
        if line.startswith("id:"):
            return number
    return None
