"""The effect table of a studies folder, parsing only the trial files that changed since the last run.

What a report needs of each valid trial file (its comparison-table rows and its summary, plain values) is
kept in ONE cache entry for the whole folder, keyed by the vocabulary and the metapsych version; inside it,
each trial is found by its path and the sha256 of its file bytes, so only new or changed files are parsed
and a stale trial is never used. One entry instead of one per file: a report reads every trial, and one
unpickling of plain rows costs a fraction of a thousand file reads and the validated models' unpickling.
The entry is rewritten only when its set of trials changed. The comparison table and the effect sizes are
then built from all trials' rows by the data and effects layers as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from metapsych.analysis.cache import Cache, code_version, sha256_bytes, sha256_json
from metapsych.errors import DataError, Problem

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.analysis.config import Config
    from metapsych.data.vocabulary import Vocabulary

VOCABULARY_FILE = Path("configs") / "vocabulary.yaml"


@dataclass(frozen=True)
class EffectTable:
    """The effect table plus what the results document says about the inputs."""

    effects: pd.DataFrame
    file_hashes: dict[str, str]
    trials: dict[str, dict]


class ParsedTrial(NamedTuple):
    """A valid trial file as the report uses it: plain values only, so that it unpickles fast."""

    id: str
    file: str
    sha256: str
    rows: list[dict[str, Any]]  # its comparison-table rows (data.table.trial_rows)
    summary: dict[str, Any]  # its entry in the results document's ``trials``


def vocabulary_path(studies_dir: Path) -> Path | None:
    """The review's own vocabulary (``configs/vocabulary.yaml`` beside ``studies/``), if it has one."""
    path = studies_dir.resolve().parent / VOCABULARY_FILE
    return path if path.is_file() else None


def load_effect_table(studies_dir: Path, config: Config, cache: Cache) -> EffectTable:
    """Validate all trial files (only those not cached), build the comparison table and compute effect sizes."""
    from metapsych.data.files import trial_files
    from metapsych.data.table import table_from_rows
    from metapsych.data.vocabulary import BUILTIN, load_vocabulary
    from metapsych.effects.compute import compute_effects

    extra = vocabulary_path(studies_dir)
    vocabulary = load_vocabulary(extra)
    set_key = sha256_json(["trial-set", code_version(), sha256_bytes(Path(BUILTIN).read_bytes()),
                           sha256_bytes(extra.read_bytes()) if extra else None])
    items, problems = _parse_trials(trial_files(studies_dir), vocabulary, set_key, cache)
    problems += _duplicate_ids(items)
    if problems:
        raise DataError(problems)
    items.sort(key=lambda t: t.id)
    table = table_from_rows([row for trial in items for row in trial.rows])
    effects = compute_effects(table, measure=config.effect.measure, cer=config.effect.cer, vocabulary=vocabulary)
    hashes = {t.id: t.sha256 for t in items}
    return EffectTable(effects, hashes, {t.id: t.summary for t in items})


def _parse_trials(paths: list[Path], vocabulary: Vocabulary, set_key: str,
                  cache: Cache) -> tuple[list[ParsedTrial], list[Problem]]:
    """The valid trials of ``paths`` (from the cached set where their path and bytes are known) and the
    errors of the others; stores the set again when it changed (a trial added, changed or removed)."""
    cached = cache.get_pickle("trials", set_key)
    known: dict[tuple[str, str], ParsedTrial] = cached if isinstance(cached, dict) else {}
    found: dict[tuple[str, str], ParsedTrial] = {}
    problems: list[Problem] = []
    for path in paths:
        key = (str(path), sha256_bytes(path.read_bytes()))
        trial = known.get(key)
        if trial is None:
            trial, errors = _parse_one(path, vocabulary)
            problems += errors
        if trial is not None:
            found[key] = trial
    if found.keys() != known.keys():
        cache.put_pickle("trials", set_key, found)
    return list(found.values()), problems


def _parse_one(path: Path, vocabulary: Vocabulary) -> tuple[ParsedTrial | None, list[Problem]]:
    """Parse and check one trial file: the trial (None when it has errors) and its errors."""
    from metapsych.data.load import check_file
    from metapsych.data.table import trial_rows

    loaded, found = check_file(path, vocabulary)
    errors = [p for p in found if p.severity == "error"]
    if loaded is None:
        return None, errors
    return ParsedTrial(loaded.id, loaded.file, loaded.sha256, trial_rows(loaded, vocabulary),
                       _trial_summary(loaded)), errors


def _duplicate_ids(items: list) -> list[Problem]:
    """A problem for each trial whose id an earlier file already has (the parsing stack is imported only then)."""
    seen: dict[str, str] = {}
    problems = []
    for trial in items:
        if trial.id in seen:
            from metapsych.data.load import id_line

            problems.append(Problem(trial.file, id_line(Path(trial.file)), "id",
                                    f"duplicate trial id {trial.id!r}, also in {seen[trial.id]}",
                                    "ids unique across all trial files"))
        seen.setdefault(trial.id, trial.file)
    return problems


def _trial_summary(loaded: object) -> dict:
    trial = loaded.trial  # type: ignore[attr-defined]
    rob = trial.risk_of_bias
    return {"study": trial.label, "citation": trial.citation, "year": trial.year, "condition": trial.condition,
            "rob": rob.overall if rob else None}
