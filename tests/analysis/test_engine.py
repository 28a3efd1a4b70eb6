"""The engine (build_results) on a small generated review: parity with `metapsych pool`, determinism,
the cache, dependency handling and the incremental behaviour of adding one trial."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from analysis.trialgen import trial_yaml, write_review
from metapsych.analysis.cache import Cache
from metapsych.analysis.config import load_config
from metapsych.analysis.models import MODEL_KEYS
from metapsych.analysis.plan import CELL_ID
from metapsych.analysis.run import build_results
from metapsych.cli import app

POOL_KEYS = ("k", "estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value", "df", "tau2", "tau", "I2",
             "H2", "Q", "Q_p", "pi_lower", "pi_upper")


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_review(tmp_path_factory.mktemp("review"), n_trials=30)


@pytest.fixture(scope="module")
def results(review: Path) -> dict:
    config = load_config(review / "configs" / "default.yaml")
    return build_results(review / "studies", config, cache=Cache(review / ".metapsych-cache"))


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(1e-6 * abs(b), 1e-8)


def test_document_shape(results: dict) -> None:
    json.dumps(results, allow_nan=False)
    ids = [c["id"] for c in results["cells"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and all(CELL_ID.match(i) for i in ids)
    assert len(results["inputs"]["trials"]) == 30 == len(results["trials"])
    assert {c["comparator"] for c in results["cells"]} >= {"waitlist", "care-as-usual", "all-controls", "pst"}
    ok = [c for c in results["cells"] if c["status"] == "ok"]
    assert ok and all(c["main"]["k"] == c["k"] == len(c["studies"]) for c in ok)
    assert all(set(c["main"]) == set(MODEL_KEYS) for c in ok)
    assert "REML" in results["methods"]["text"] and results["methods"]["dependency"] == "aggregate (rho=0.6)"


def test_cells_below_the_minimum_are_listed_not_dropped(review: Path) -> None:
    config = load_config(review / "configs" / "default.yaml").model_copy(update={"min_studies": 4})
    res = build_results(review / "studies", config)
    few = [c for c in res["cells"] if c["k"] < 4]
    assert few and all(c["status"] == "too_few_trials" and c["main"] is None for c in few)
    assert {n["cell"] for n in res["not_estimable"]} == {c["id"] for c in few}


def test_cell_main_model_equals_metapsych_pool(results: dict, tmp_path: Path) -> None:
    runner = CliRunner()
    cells = [c for c in results["cells"] if c["status"] == "ok"]
    for cell in cells:
        csv = tmp_path / f"{cell['id']}.csv"
        csv.write_text("study,yi,vi\n" + "".join(f"{s['trial']},{s['yi']!r},{s['vi']!r}\n" for s in cell["studies"]))
        out = runner.invoke(app, ["pool", str(csv), "--json", "--knha"])
        assert out.exit_code == 0, out.output
        pooled = json.loads(out.stdout)
        main = cell["main"]
        for key in POOL_KEYS:
            assert close(main[key], pooled[key]), (cell["id"], key, main[key], pooled[key])
        for key in ("tau2_ci", "I2_ci"):
            assert all(close(a, b) for a, b in zip(main[key], pooled[key])), (cell["id"], key)


def test_within_trial_effects_are_aggregated_with_rho(results: dict, review: Path) -> None:
    from metapsych.data.load import load_studies
    from metapsych.data.table import comparison_table
    from metapsych.effects.compute import compute_effects
    from metapsych.stats.aggregate import aggregate

    effects = compute_effects(comparison_table(load_studies(review / "studies" / "trial-002.yaml")))
    post = effects[effects["time"] == "post"]
    assert len(post) == 2
    yi, vi, _ = aggregate(post["yi"].to_numpy(), post["vi"].to_numpy(), [0, 0], rho=0.6)
    cell = next(c for c in results["cells"] if c["id"] == "depression.ipt.vs.waitlist.post")
    study = next(s for s in cell["studies"] if s["trial"] == "trial-002")
    assert close(study["yi"], float(yi[0])) and close(study["vi"], float(vi[0]))


def test_subgroups_moderators_cumulative_and_overview(results: dict) -> None:
    cell = next(c for c in results["cells"] if c["id"] == "depression.cbt.vs.all-controls.post")
    control = cell["subgroups"]["control"]
    assert set(control["levels"]) == {"waitlist", "care-as-usual"} and control["test"]["df"] == 1
    assert cell["cumulative"][-1]["k"] == cell["k"] and close(cell["cumulative"][-1]["estimate"],
                                                              cell["main"]["estimate"])
    rows = {r["model"]: r for r in cell["sensitivity"]}
    assert list(rows)[:2] == ["overall", "combined"] and rows["overall"]["k"] > cell["k"]
    assert close(rows["combined"]["estimate"], cell["main"]["estimate"])  # combined = the main model
    assert {r["study"] for r in cell["influence"]["leave_one_out"]} == {s["trial"] for s in cell["studies"]}
    assert cell["bias"]["egger"] is None and "k >= 10" in cell["bias"]["bias_note"]
    sessions = results["moderators"]["depression"]["sessions"]
    assert sessions["k"] >= 5 and set(sessions["coefficients"]) == {"intrcpt", "sessions"}
    ranks = [r for r in results["overview"]["depression"] if r["comparator"] == "all-controls"]
    assert sorted(r["rank"] for r in ranks) == list(range(1, len(ranks) + 1))
    best = min(ranks, key=lambda r: r["rank"])
    assert best["estimate"] == max(r["estimate"] for r in ranks)


def test_two_builds_are_identical_and_the_second_reuses_every_cell(review: Path, results: dict) -> None:
    config = load_config(review / "configs" / "default.yaml")
    cache = Cache(review / ".metapsych-cache")
    before = {p: p.stat().st_mtime_ns for p in (review / ".metapsych-cache").rglob("*") if p.is_file()}
    again = build_results(review / "studies", config, cache=cache)
    assert json.dumps(again, sort_keys=True) == json.dumps(results, sort_keys=True)
    after = {p: p.stat().st_mtime_ns for p in (review / ".metapsych-cache").rglob("*") if p.is_file()}
    assert before == after  # nothing recomputed, nothing rewritten


def test_adding_a_trial_changes_only_the_cells_it_enters(review: Path, results: dict, tmp_path: Path) -> None:
    copy = tmp_path / "review"
    shutil.copytree(review, copy)
    (copy / "studies" / "trial-030.yaml").write_text(trial_yaml(30), encoding="utf-8")
    config = load_config(copy / "configs" / "default.yaml")
    new = build_results(copy / "studies", config, cache=Cache(copy / ".metapsych-cache"))
    old_hash = {c["id"]: c["inputs_sha256"] for c in results["cells"]}
    touched = {c["id"] for c in new["cells"] if old_hash.get(c["id"]) != c["inputs_sha256"]}
    assert touched == {c["id"] for c in new["cells"] if any(s["trial"] == "trial-030" for s in c["studies"])}
    assert touched and len(touched) < len(new["cells"]) / 2
    cells_dir = copy / ".metapsych-cache" / "cells"
    computed = {p.stem for p in cells_dir.iterdir()} - {p.stem for p in (review / ".metapsych-cache" / "cells").iterdir()}
    assert computed == {c["inputs_sha256"] for c in new["cells"] if c["id"] in touched}


def test_first_effect_rule(review: Path) -> None:
    config = load_config(review / "configs" / "default.yaml")
    config = config.model_copy(update={"dependency": config.dependency.model_copy(update={"method": "first"})})
    res = build_results(review / "studies", config)
    cell = next(c for c in res["cells"] if c["id"] == "depression.ipt.vs.waitlist.post")
    study = next(s for s in cell["studies"] if s["trial"] == "trial-002")
    assert np.isclose(study["vi"], (study["se"]) ** 2)
    assert res["methods"]["dependency"] == "first"
