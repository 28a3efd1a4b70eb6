"""Moderator meta-regressions are cached per condition: a change in one condition refits only its models."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.trialgen import write_review
from metapsych.analysis import moderators
from metapsych.analysis.cache import Cache
from metapsych.analysis.config import load_config
from metapsych.analysis.trials import load_effect_table


@pytest.fixture(scope="module")
def two_conditions(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, object]:
    review = write_review(tmp_path_factory.mktemp("review"), n_trials=24)
    config = load_config(review / "configs" / "default.yaml")
    effects = load_effect_table(review / "studies", config, Cache(None)).effects
    other = effects.assign(condition="ptsd", trial=effects["trial"] + "-p", yi=effects["yi"] * 0.5)
    return pd.concat([effects, other], ignore_index=True), config


def test_cached_models_equal_fitted_ones_and_only_the_changed_condition_is_refitted(
        two_conditions: tuple[pd.DataFrame, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    effects, config = two_conditions
    fresh = moderators.moderator_results(effects, config, Cache(tmp_path))
    assert set(fresh) == {"depression", "ptsd"} and fresh["depression"]["sessions"]["QM"] is not None
    fitted: list[str] = []
    original = moderators._condition
    monkeypatch.setattr(moderators, "_condition",
                        lambda group, cfg: fitted.append(group["condition"].iloc[0]) or original(group, cfg))
    cached = moderators.moderator_results(effects, config, Cache(tmp_path))
    assert fitted == [] and json.dumps(cached, sort_keys=True) == json.dumps(fresh, sort_keys=True)
    changed = effects.copy()
    changed.loc[changed["condition"] == "ptsd", "yi"] += 0.1
    again = moderators.moderator_results(changed, config, Cache(tmp_path))
    assert fitted == ["ptsd"]
    assert again["depression"] == fresh["depression"] and again["ptsd"] != fresh["ptsd"]
