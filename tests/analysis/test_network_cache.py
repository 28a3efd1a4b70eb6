"""Networks are cached per condition under the hash of their rows and settings: a change in one condition
refits only its network, and a change of the dependency rule (which shapes the contrasts) refits all."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from metapsych.analysis import network
from metapsych.analysis.cache import Cache


def test_only_the_changed_condition_is_refitted_and_cached_networks_equal_fitted_ones(
        two_conditions: tuple[pd.DataFrame, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    effects, config = two_conditions
    fresh = network.network_results(effects, config, Cache(tmp_path))
    assert set(fresh) == {"depression", "ptsd"} and "error" not in fresh["depression"]
    fitted: list[str] = []
    original = network.contrasts
    monkeypatch.setattr(network, "contrasts",
                        lambda rows, cfg: fitted.append(rows["trial"].iloc[0]) or original(rows, cfg))
    cached = network.network_results(effects, config, Cache(tmp_path))
    assert fitted == [] and json.dumps(cached, sort_keys=True) == json.dumps(fresh, sort_keys=True)
    changed = effects.copy()
    changed.loc[changed["condition"] == "ptsd", "yi"] += 0.1
    again = network.network_results(changed, config, Cache(tmp_path))
    assert len(fitted) == 1 and fitted[0].endswith("-p")
    assert again["depression"] == fresh["depression"] and again["ptsd"] != fresh["ptsd"]
    first = config.model_copy(update={"dependency": config.dependency.model_copy(update={"method": "first"})})
    network.network_results(effects, first, Cache(tmp_path))
    assert len(fitted) == 3
