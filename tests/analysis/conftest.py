"""Fixtures shared by the analysis tests."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.trialgen import write_review
from metapsych.analysis.cache import Cache
from metapsych.analysis.config import load_config
from metapsych.analysis.trials import load_effect_table


@pytest.fixture(scope="module")
def two_conditions(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, object]:
    """The effects of a generated review (depression) plus a shifted copy of them as a second condition
    (ptsd), and the review's config: for tests of per-condition caching."""
    review = write_review(tmp_path_factory.mktemp("review"), n_trials=24)
    config = load_config(review / "configs" / "default.yaml")
    effects = load_effect_table(review / "studies", config, Cache(None)).effects
    other = effects.assign(condition="ptsd", trial=effects["trial"] + "-p", yi=effects["yi"] * 0.5)
    return pd.concat([effects, other], ignore_index=True), config
