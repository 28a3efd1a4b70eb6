"""The effect table of a studies folder, parsing only the trial files that changed since the last run.

Each validated trial (the data layer's ``LoadedTrial``) is cached under the sha256 of its file bytes, the
vocabulary and the metapsych version; files whose hash is cached are not parsed again. The comparison
table and the effect sizes are then built from all trials by the data and effects layers as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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


def vocabulary_path(studies_dir: Path) -> Path | None:
    """The review's own vocabulary (``configs/vocabulary.yaml`` beside ``studies/``), if it has one."""
    path = studies_dir.resolve().parent / VOCABULARY_FILE
    return path if path.is_file() else None


def load_effect_table(studies_dir: Path, config: Config, cache: Cache) -> EffectTable:
    """Validate all trial files (cached per file), build the comparison table and compute effect sizes."""
    from metapsych.data.load import Trials, trial_files
    from metapsych.data.table import comparison_table
    from metapsych.data.vocabulary import BUILTIN, load_vocabulary
    from metapsych.effects.compute import compute_effects

    extra = vocabulary_path(studies_dir)
    vocabulary = load_vocabulary(extra)
    vocab_key = sha256_json([code_version(), sha256_bytes(Path(BUILTIN).read_bytes()),
                             sha256_bytes(extra.read_bytes()) if extra else None])
    loaded = [_load_one(path, vocabulary, vocab_key, cache) for path in trial_files(studies_dir)]
    problems = [p for _, found in loaded for p in found if p.severity == "error"]
    items = [trial for trial, _ in loaded if trial is not None]
    problems += _duplicate_ids(items)
    if problems:
        raise DataError(problems)
    items.sort(key=lambda t: t.id)
    table = comparison_table(Trials(tuple(items), vocabulary, files_checked=len(items)))
    effects = compute_effects(table, measure=config.effect.measure, cer=config.effect.cer, vocabulary=vocabulary)
    hashes = {t.id: t.sha256 for t in items}
    return EffectTable(effects, hashes, {t.id: _trial_summary(t) for t in items})


def _load_one(path: Path, vocabulary: Vocabulary, vocab_key: str, cache: Cache) -> tuple:
    from metapsych.data.load import check_file

    key = sha256_json([vocab_key, str(path), sha256_bytes(path.read_bytes())])
    hit = cache.get_pickle("trials", key)
    if hit is not None:
        return hit
    result = check_file(path, vocabulary)
    if result[0] is not None:
        cache.put_pickle("trials", key, result)
    return result


def _duplicate_ids(items: list) -> list[Problem]:
    from metapsych.data.load import id_line

    seen: dict[str, str] = {}
    problems = []
    for trial in items:
        if trial.id in seen:
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
