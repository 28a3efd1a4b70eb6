"""The parsed trials are cached as one set: a re-run parses only new or changed files, gives the same effect
table as a cold load, never caches a file with errors, and keeps one entry for the folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.trialgen import trial_yaml, write_review
from metapsych.analysis import trials
from metapsych.analysis.cache import Cache
from metapsych.analysis.config import load_config
from metapsych.errors import DataError


def load(review: Path, cache: Cache) -> trials.EffectTable:
    return trials.load_effect_table(review / "studies", load_config(review / "configs" / "default.yaml"), cache)


def parsed_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    original = trials._parse_one
    monkeypatch.setattr(trials, "_parse_one", lambda path, vocabulary: names.append(path.name)
                        or original(path, vocabulary))
    return names


def assert_same(a: trials.EffectTable, b: trials.EffectTable) -> None:
    pd.testing.assert_frame_equal(a.effects, b.effects, check_exact=True)
    assert (a.file_hashes, a.trials) == (b.file_hashes, b.trials)


def test_a_rerun_parses_only_new_or_changed_files_and_equals_a_cold_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    review = write_review(tmp_path, n_trials=8)
    cache = Cache(tmp_path / "cache")
    first = load(review, cache)
    parsed = parsed_files(monkeypatch)
    assert_same(load(review, Cache(tmp_path / "cache")), first)
    assert parsed == []
    (review / "studies" / "trial-900.yaml").write_text(trial_yaml(900), encoding="utf-8")
    changed = review / "studies" / "trial-001.yaml"
    changed.write_text(changed.read_text(encoding="utf-8").replace("Author1,", "Author1b,"), encoding="utf-8")
    again = load(review, Cache(tmp_path / "cache"))
    assert sorted(parsed) == ["trial-001.yaml", "trial-900.yaml"]
    assert again.trials["trial-001"]["study"].startswith("Author1b") and "trial-900" in again.file_hashes
    assert_same(again, load(review, Cache(None)))
    assert len(list((tmp_path / "cache" / "trials").iterdir())) == 1  # the one entry, rewritten


def test_a_file_with_errors_is_reported_on_every_run_and_never_cached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    review = write_review(tmp_path, n_trials=4)
    bad = review / "studies" / "trial-002.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("year: 2002", "year: soon"), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(DataError) as raised:
            load(review, Cache(tmp_path / "cache"))
        assert [p.file for p in raised.value.problems] == [str(bad)]
    parsed = parsed_files(monkeypatch)
    with pytest.raises(DataError):
        load(review, Cache(tmp_path / "cache"))
    assert parsed == ["trial-002.yaml"]
