"""The cells' diagnostics give the same document whether they run here or in worker processes, and the
sensitivity table computed in parts equals the table computed at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.trialgen import write_review
from metapsych.analysis import run as engine
from metapsych.analysis.cache import Cache
from metapsych.analysis.cells import SENSITIVITY_PARTS, sensitivity_block
from metapsych.analysis.config import load_config
from metapsych.analysis.sensitivity import ROWS, sensitivity_table


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_review(tmp_path_factory.mktemp("review"), n_trials=30)


def test_worker_processes_and_this_process_give_the_same_document(review: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(review / "configs" / "default.yaml")
    documents = []
    for threshold in (0, 10**9):  # every run in worker processes, then every run here
        monkeypatch.setattr(engine, "PARALLEL_FROM_K", threshold)
        documents.append(json.dumps(engine.build_results(review / "studies", config, cache=Cache(None)),
                                    sort_keys=True))
    assert documents[0] == documents[1]


def test_the_parts_make_up_the_table() -> None:
    assert tuple(m for part in SENSITIVITY_PARTS for m in part) == ROWS
    rng = np.random.default_rng(4)
    trials = [f"t{i // 2}" for i in range(16)]
    effects = {"yi": list(rng.normal(0.3, 0.3, 16)), "vi": list(rng.uniform(0.02, 0.1, 16)), "trial": trials,
               "rob_low": [i % 3 == 0 for i in range(16)]}
    whole = sensitivity_table(effects["yi"], effects["vi"], trials, effects["rob_low"], test="knha")
    parts = [sensitivity_table(effects["yi"], effects["vi"], trials, effects["rob_low"], test="knha", models=m)
             for m in SENSITIVITY_PARTS]
    assert json.dumps(sensitivity_block(parts, 16)["sensitivity"]) == json.dumps(whole)


def test_a_failed_part_replaces_the_table_by_one_row() -> None:
    block = sensitivity_block([[{"model": "overall"}], "singular matrix", [{"model": "three_level_che"}]], 7)
    assert block == {"sensitivity": [{"model": "overall", "k": 7,
                                      "message": "sensitivity analyses could not be computed: singular matrix"}]}


def test_unknown_model_is_an_error_not_a_silent_gap() -> None:
    with pytest.raises(ValueError, match="unknown sensitivity model"):
        sensitivity_table([0.1, 0.2, 0.3], [0.01, 0.01, 0.01], ["a", "b", "c"], None, models=("overal",))
