"""Run the whole grid: from a studies folder and a config to the results document (docs/architecture.md).

``build_results`` is the engine behind ``metapsych run``. Steps: load trials (cached per file), compute
effects, plan the cells, reduce each cell to one effect per trial, fit the main models of all cells that
are not cached in one vectorised batch, add each cell's subgroups, cumulative, sensitivity and diagnostics,
then the per-condition overview, moderators and networks. The document is deterministic: the same inputs
give the same dict, so the report and its diff are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from metapsych import __version__
from metapsych.analysis.cache import Cache

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.analysis.config import Config
    from metapsych.analysis.inputs import CellInputs

SCHEMA_VERSION = 1
PARALLEL_FROM_K = 60  # trials (summed over the cells to diagnose) before worker processes pay off
MAX_WORKERS = 8
Progress = Callable[[str, int, int], None]


def _silent(stage: str, done: int, total: int) -> None:
    """The default progress callback: report nothing."""


def build_results(studies_dir: Path, config: Config, *, cache: Cache | None = None,
                  progress: Progress = _silent) -> dict:
    """The results document of the trials under ``studies_dir`` analysed as ``config`` says."""
    from metapsych.analysis.trials import load_effect_table

    cache = cache or Cache(None)
    progress("loading trials", 0, 1)
    table = load_effect_table(studies_dir, config, cache)
    progress("loading trials", 1, 1)
    return results_from_effects(table.effects, config, table.file_hashes, table.trials, cache=cache,
                                progress=progress)


def results_from_effects(effects: pd.DataFrame, config: Config, file_hashes: dict[str, str],
                         trials: dict[str, dict], *, cache: Cache | None = None,
                         progress: Progress = _silent) -> dict:
    """The results document of an effect table (comparison table with ``yi``/``vi``)."""
    from metapsych.analysis.inputs import cell_inputs
    from metapsych.analysis.moderators import moderator_results
    from metapsych.analysis.network import network_results
    from metapsych.analysis.plan import plan_cells

    cache = cache or Cache(None)
    inputs = [cell_inputs(plan, config) for plan in plan_cells(effects, config)]
    cells = _cells(inputs, config, cache, progress)
    progress("moderators", 0, 1)
    moderators = moderator_results(effects, config, cache)
    progress("moderators", 1, 1)
    progress("networks", 0, 1)
    networks = network_results(effects, config, cache)
    progress("networks", 1, 1)
    return {
        "schema_version": SCHEMA_VERSION,
        "metapsych_version": __version__,
        "methods": methods_block(config),
        "inputs": {"trials": dict(sorted(file_hashes.items())), "config_sha256": config.sha256()},
        "trials": dict(sorted(trials.items())),
        "cells": cells,
        "overview": overview(cells),
        "moderators": moderators,
        "network": networks,
        "not_estimable": [{"cell": c["id"], "reason": c["message"]} for c in cells if c["status"] != "ok"],
    }


def _cells(inputs: list[CellInputs], config: Config, cache: Cache, progress: Progress) -> list[dict]:
    """Cell dicts in id order: cached ones reused, the rest computed (main models in one batch)."""
    from metapsych.analysis.cells import cumulative_prefixes, cumulative_rows, estimated_cell, too_few_cell

    done: dict[str, dict] = {}
    todo = []
    for item in inputs:
        hit = cache.get_json("cells", item.inputs_sha256)
        if isinstance(hit, dict):
            done[item.plan.id] = hit
        elif item.k < item.plan.min_studies:
            done[item.plan.id] = too_few_cell(item, config.model.level)
            cache.put_json("cells", item.inputs_sha256, done[item.plan.id])
        else:
            todo.append(item)
    if todo:
        progress("fitting main models", 0, len(todo))
        main = batch_fit([(item.yi, item.vi) for item in todo], config, qprofile=True)
        prefixes = [cumulative_prefixes(item) for item in todo]
        cumul = iter(batch_fit([(item.yi[idx], item.vi[idx]) for item, sets in zip(todo, prefixes) for idx in sets],
                               config, qprofile=False))
        lo_i2, hi_i2 = main.I2_ci
        for i, (item, diagnostics) in enumerate(zip(todo, _diagnostics(todo, config, progress))):
            cis = ((main.tau2_ci_lower[i], main.tau2_ci_upper[i]), (lo_i2[i], hi_i2[i]))
            rows = cumulative_rows(item, [next(cumul) for _ in prefixes[i]])
            cell = estimated_cell(item, main[i], cis, rows, diagnostics, config)
            cache.put_json("cells", item.inputs_sha256, cell)
            done[item.plan.id] = cell
            progress("cells", i + 1, len(todo))
    return [done[item.plan.id] for item in inputs]


def _diagnostics(todo: list[CellInputs], config: Config, progress: Progress) -> Iterator[dict]:
    """Per-cell diagnostics and sensitivity tables (fitted cell by cell upstream), as parallel tasks.

    The two halves of every cell are separate tasks, the largest cells first, spread over worker processes
    (one per core) whenever there is more than one task's worth of work. The workers are forked after the
    modules the tasks need are imported here, so that they start with them instead of importing them each.
    """
    import os

    from metapsych.analysis.cells import cell_diagnostics, cell_sensitivity, preload_diagnostics

    tasks = [(cell_diagnostics, (item.yi, item.vi, list(item.trials), config)) for item in todo]
    tasks += [(cell_sensitivity, (item.effects, config)) for item in todo]
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    progress("diagnostics", 0, len(tasks))
    preload_diagnostics()
    if workers < 2 or sum(item.k for item in todo) < PARALLEL_FROM_K:
        results = []
        for func, args in tasks:
            results.append(func(*args))
            progress("diagnostics", len(results), len(tasks))
    else:
        import multiprocessing
        import sys
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        sizes = [item.k for item in todo] * 2
        order = sorted(range(len(tasks)), key=lambda i: -sizes[i])
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
            futures = {i: pool.submit(tasks[i][0], *tasks[i][1]) for i in order}
            for done, _ in enumerate(as_completed(futures.values()), 1):
                progress("diagnostics", done, len(tasks))
            results = [futures[i].result() for i in range(len(tasks))]
    n = len(todo)
    return ({**results[i], **results[n + i]} for i in range(n))


def batch_fit(data: list[tuple], config: Config, *, qprofile: bool):  # type: ignore[no-untyped-def]
    """The config's random-effects model fitted to every (yi, vi) pair in ``data``, as one vectorised batch."""
    import numpy as np

    from metapsych.analysis.models import test_name
    from metapsych.stats.batch import fit_many

    yi = np.concatenate([y for y, _ in data])
    vi = np.concatenate([v for _, v in data])
    group = np.repeat(np.arange(len(data)), [len(y) for y, _ in data])
    return fit_many(yi, vi, group, estimator=config.model.estimator, test=test_name(config),
                    level=config.model.level, qprofile=qprofile)


def overview(cells: list[dict]) -> dict:
    """Per condition, the pooled cells ranked by estimate within each comparator and time point, each with
    the sensitivity models that would change its conclusion (``sensitivity_changed``)."""
    from metapsych.analysis.sensitivity import changed_conclusions

    groups: dict[tuple, list[dict]] = {}
    for cell in cells:
        if cell["status"] == "ok":
            groups.setdefault((cell["condition"], cell["comparator"], cell["time"]), []).append(cell)
    out: dict[str, list[dict]] = {}
    for (condition, _, _), members in sorted(groups.items()):
        ranked = sorted(members, key=lambda c: (-(c["main"]["estimate"] or 0.0), c["id"]))
        for rank, cell in enumerate(ranked, 1):
            out.setdefault(condition, []).append({
                "approach": cell["approach"], "comparator": cell["comparator"], "time": cell["time"],
                "k": cell["k"], "estimate": cell["main"]["estimate"], "ci_lower": cell["main"]["ci_lower"],
                "ci_upper": cell["main"]["ci_upper"], "cell": cell["id"], "rank": rank,
                "sensitivity_changed": changed_conclusions(cell["main"], cell.get("sensitivity") or [])})
    return out


def methods_block(config: Config) -> dict:
    """The methods block: every setting that shapes the numbers, and a paragraph saying so."""
    model, dep = config.model, config.dependency
    dependency = f"aggregate (rho={dep.rho})" if dep.method == "aggregate" else "first"
    test = "knha" if model.knha else "z"
    text = (
        f"Effects are Hedges' g (positive values favour the first-named arm). For each cell, several effects "
        f"of one trial were {'aggregated within the trial assuming a correlation of ' + str(dep.rho) if dep.method == 'aggregate' else 'reduced to the first listed effect'}, "
        f"and the trial-level effects were pooled with a random-effects model ({model.estimator} estimator of "
        f"tau^2{', Hartung-Knapp-Sidik-Jonkman confidence intervals and tests' if model.knha else ', Wald-type tests'}, "
        f"{int(round(model.level * 100))}% level). Q-profile intervals are given for tau^2 and I^2 (I^2 as in metafor, "
        f"based on tau^2 and the typical within-study variance)"
        f"{'; prediction intervals as in metafor predict()' if model.prediction_interval else ''}. "
        f"Cells with fewer than {config.min_studies} trials were not pooled; small-study tests were run only "
        f"for cells with at least {config.bias_min_studies} trials. NNTs follow Furukawa and Leucht with a "
        f"control event rate of {config.effect.cer}."
    )
    return {"measure": config.effect.measure, "estimator": model.estimator, "test": test, "tau2_ci": "Q-profile",
            "I2": "metafor tau2-based", "prediction_interval": "metafor predict()" if model.prediction_interval
            else None, "level": model.level, "dependency": dependency, "min_studies": config.min_studies,
            "bias_min_studies": config.bias_min_studies, "cer": config.effect.cer, "text": text}
