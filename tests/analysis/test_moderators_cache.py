"""Moderator meta-regressions are cached per condition: a change in one condition refits only its models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from metapsych.analysis import moderators
from metapsych.analysis.cache import Cache


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


def test_a_text_moderator_is_named_as_text(two_conditions: tuple[pd.DataFrame, object]) -> None:
    """A moderator every trial gives as text (country) said '0 trial(s) report it'."""
    effects, config = two_conditions
    config = config.model_copy(update={"moderators": config.moderators.model_copy(update={"variables": ["country"]})})
    found = moderators.moderator_results(effects.assign(country="UK"), config, moderators.Cache(None))
    message = found["depression"]["country"]["message"]
    assert re.match(r"0 trial\(s\) report it as a number; \d+ give text, which a meta-regression cannot use", message)


def test_a_percentage_on_two_scales_is_noted(two_conditions: tuple[pd.DataFrame, object]) -> None:
    """The Metapsy databases store percent_women as a proportion (0.71); a trial typed as 70 beside them would
    make a regression on two scales."""
    effects, config = two_conditions
    config = config.model_copy(update={"moderators": config.moderators.model_copy(
        update={"variables": ["percent_women"]})})
    trials = sorted(effects["trial"].unique())
    share = effects["trial"].map({t: 0.3 + 0.01 * i for i, t in enumerate(trials)})
    fitted = moderators.moderator_results(effects.assign(percent_women=share), config, moderators.Cache(None))
    assert fitted["depression"]["percent_women"]["QM"] is not None, fitted["depression"]["percent_women"]["message"]
    mixed = share.where(~effects["trial"].isin(trials[:10]), 70.0)
    found = moderators.moderator_results(effects.assign(percent_women=mixed), config, moderators.Cache(None))
    assert "is below 1 in " in found["depression"]["percent_women"]["message"]
    assert found["depression"]["percent_women"]["QM"] is not None  # fitted, with the note: 0.5% is possible
