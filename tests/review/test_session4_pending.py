"""Session 4 review: moderator models and networks of uncached conditions computed by the worker pool
(analysis/pending.py, analysis/run.py). The document must not depend on where or whether they were computed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from analysis.trialgen import write_review

from metapsych.analysis import network
from metapsych.analysis import run as engine
from metapsych.analysis.cache import Cache
from metapsych.analysis.config import load_config
from metapsych.analysis.trials import load_effect_table
from metapsych.report.tables import results_json


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, object]:
    """Three conditions: depression, a shifted copy (ptsd), and anxiety with three trials, whose network
    fails (see ``failing_network``) and whose moderators are all below their minimum."""
    root = write_review(tmp_path_factory.mktemp("review"), n_trials=12)
    config = load_config(root / "configs" / "default.yaml")
    effects = load_effect_table(root / "studies", config, Cache(None)).effects
    ptsd = effects.assign(condition="ptsd", trial=effects["trial"] + "-p", yi=effects["yi"] * 0.5)
    few = sorted(effects["trial"].unique())[:3]
    anxiety = effects[effects["trial"].isin(few)].assign(condition="anxiety", trial=lambda d: d["trial"] + "-a")
    return pd.concat([effects, ptsd, anxiety], ignore_index=True), config


@pytest.fixture()
def failing_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The anxiety network ends in an error entry (patched before the workers fork, so they inherit it)."""
    original = network._condition_network

    def fit(data: dict, config: object, notes: list[str]) -> dict:
        if any(str(s).endswith("-a") for s in data["study"]):
            return {"error": "fewer than two treatments with usable contrasts", "notes": list(notes)}
        return original(data, config, notes)

    monkeypatch.setattr(network, "_condition_network", fit)


def _document(effects: pd.DataFrame, config: object, cache: Cache, parallel: bool,
              monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setattr(engine, "PARALLEL_FROM_K", 0 if parallel else 10**9)
    return results_json(engine.results_from_effects(effects, config, {}, {}, cache=cache))


@pytest.mark.usefixtures("failing_network")
def test_serial_parallel_cached_and_partly_cached_documents_are_identical(
        review: tuple[pd.DataFrame, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    effects, config = review
    serial = _document(effects, config, Cache(None), False, monkeypatch)
    assert b'"error":"fewer than two treatments' in serial and b"at least 5 needed" in serial
    assert _document(effects, config, Cache(None), True, monkeypatch) == serial
    cache = Cache(tmp_path / "cache")
    _document(effects[effects["condition"] == "depression"], config, cache, True, monkeypatch)
    assert _document(effects, config, cache, True, monkeypatch) == serial  # ptsd, anxiety computed, depression cached
    assert _document(effects, config, cache, False, monkeypatch) == serial  # everything cached


def test_an_exception_in_a_condition_task_is_the_same_in_both_modes(
        review: tuple[pd.DataFrame, object], monkeypatch: pytest.MonkeyPatch) -> None:
    effects, config = review
    original = network._condition_network

    def fit(data: dict, config: object, notes: list[str]) -> dict:
        if any(str(s).endswith("-p") for s in data["study"]):
            raise ArithmeticError("ptsd network exploded")
        return original(data, config, notes)

    monkeypatch.setattr(network, "_condition_network", fit)
    for parallel in (False, True):
        with pytest.raises(ArithmeticError, match="ptsd network exploded"):
            _document(effects, config, Cache(None), parallel, monkeypatch)
