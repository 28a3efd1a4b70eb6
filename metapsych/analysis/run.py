"""Run the whole grid: from a studies folder and a config to the results document (docs/architecture.md).

``build_results`` is the engine behind ``metapsych run``. Steps: load trials (parsing only new or changed
files), compute effects, plan the cells, reduce each cell to one effect per trial; for the cells that are
not cached, start their diagnostics and sensitivity tables, and the moderator models and networks of the
conditions not cached (worker processes when there is enough work), fit their main and cumulative models in
two vectorised batches meanwhile, then add each cell's subgroups; finally the overview. The document is
deterministic: the same inputs give the same dict, so the report and its diff are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from metapsych import __version__
from metapsych.analysis.cache import Cache

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.analysis.config import Config
    from metapsych.analysis.inputs import CellInputs
    from metapsych.analysis.pending import Pending
    from metapsych.analysis.plan import CellPlan

SCHEMA_VERSION = 1
PARALLEL_FROM_K = 60  # trials of the cells plus rows of the conditions to compute before worker processes pay off
MAX_WORKERS = 8
Progress = Callable[[str, int, int], None]


def _silent(stage: str, done: int, total: int) -> None:
    """The default progress callback: report nothing."""


def build_results(studies_dir: Path, config: Config, *, cache: Cache | None = None,
                  progress: Progress = _silent) -> dict:
    """The results document of the trials under ``studies_dir`` analysed as ``config`` says."""
    from metapsych.analysis.config import check_moderators
    from metapsych.analysis.trials import load_effect_table

    cache = cache or Cache(None)
    progress("loading trials", 0, 1)
    table = load_effect_table(studies_dir, config, cache)
    check_moderators(config, table.effects.columns)
    progress("loading trials", 1, 1)
    return results_from_effects(table.effects, config, table.file_hashes, table.trials, cache=cache,
                                progress=progress)


def results_from_effects(effects: pd.DataFrame, config: Config, file_hashes: dict[str, str],
                         trials: dict[str, dict], *, cache: Cache | None = None,
                         progress: Progress = _silent) -> dict:
    """The results document of an effect table (comparison table with ``yi``/``vi``).

    The diagnostics of the cells to compute, and the moderator models and networks of the conditions not
    cached, start first (in worker processes when there is enough work); the main models are fitted here
    meanwhile.
    """
    from metapsych.analysis.moderators import moderator_plan
    from metapsych.analysis.network import network_plan
    from metapsych.analysis.plan import plan_cells

    cache = cache or Cache(None)
    plans = plan_cells(effects, config)
    done, todo = _reuse_cells(plans, config, cache)
    per_condition = moderator_plan(effects, config, cache), network_plan(effects, config, cache)
    with _diagnostics(todo, config, [item for planned in per_condition for item in planned.pending]) as diagnostics:
        fits = _fit_cells(todo, config, progress)
        cell_diagnostics, payloads = diagnostics(progress)
        for i, item in enumerate(todo):
            done[item.plan.id] = fits(i, cell_diagnostics[i])
            cache.put_pickle("cells", item.inputs_sha256, done[item.plan.id])
            progress("cells", i + 1, len(todo))
    split = len(per_condition[0].pending)
    moderators = per_condition[0].finish(payloads[:split], cache)
    networks = per_condition[1].finish(payloads[split:], cache)
    cells = [done[plan.id] for plan in plans]
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


def _reuse_cells(plans: list[CellPlan], config: Config, cache: Cache) -> tuple[dict[str, dict], list[CellInputs]]:
    """Cells found in the cache or below the minimum (keyed by id), and the inputs of the cells still to
    compute. A cached cell is found by its key alone; its trial-level inputs are not built.

    Cells are cached as pickles: a report reads all of them, and unpickling is three times faster than JSON.
    """
    from metapsych.analysis.cells import too_few_cell
    from metapsych.analysis.inputs import cell_inputs, cell_key

    done: dict[str, dict] = {}
    todo = []
    for plan in plans:
        key = cell_key(plan, config)
        hit = cache.get_pickle("cells", key)
        if isinstance(hit, dict):
            done[plan.id] = hit
            continue
        item = cell_inputs(plan, config, key)
        if item.k < plan.min_studies:
            done[plan.id] = too_few_cell(item, config.model.level)
            cache.put_pickle("cells", key, done[plan.id])
        else:
            todo.append(item)
    return done, todo


def _fit_cells(todo: list[CellInputs], config: Config, progress: Progress) -> Callable[[int, dict], dict]:
    """Fit the main models and cumulative models of ``todo`` in two vectorised batches; returns
    ``cell(i, diagnostics)``, the dict of cell i once its diagnostics are known."""
    from metapsych.analysis.cells import cumulative_prefixes, cumulative_rows, estimated_cell

    if not todo:
        return lambda i, diagnostics: {}
    progress("fitting main models", 0, len(todo))
    main = batch_fit([(item.yi, item.vi) for item in todo], config, qprofile=True)
    prefixes = [cumulative_prefixes(item) for item in todo]
    cumul = list(batch_fit([(item.yi[idx], item.vi[idx]) for item, sets in zip(todo, prefixes) for idx in sets],
                           config, qprofile=False))
    first = np.cumsum([0] + [len(sets) for sets in prefixes])
    lo_i2, hi_i2 = main.I2_ci
    progress("fitting main models", len(todo), len(todo))

    def cell(i: int, diagnostics: dict) -> dict:
        cis = ((main.tau2_ci_lower[i], main.tau2_ci_upper[i]), (lo_i2[i], hi_i2[i]))
        rows = cumulative_rows(todo[i], cumul[first[i]:first[i + 1]])
        return estimated_cell(todo[i], main[i], cis, rows, diagnostics, config)

    return cell


@contextmanager
def _diagnostics(todo: list[CellInputs], config: Config,
                 pending: list[Pending]) -> Iterator[Callable[[Progress], tuple[list[dict], list[dict]]]]:
    """Start the cells' diagnostics and sensitivity tables and the ``pending`` per-condition payloads;
    yields ``collect(progress)``, which returns one dict (``influence``, ``bias``, ``sensitivity``) per cell
    of ``todo`` and the payloads in the order of ``pending``.

    Every cell gives one diagnostics task and one task per part of its sensitivity table (the three-level
    models of a large cell are as costly as the rest). With enough work they run in worker processes (one
    per core), the costliest first, while the caller fits the main models; the workers are forked after the
    modules the tasks need are imported here, so that they start with them instead of importing them each.
    """
    import os

    from metapsych.analysis.cells import preload_diagnostics

    tasks = _diagnostic_tasks(todo, config) + [(item.func, item.args, item.cost) for item in pending]
    cells = len(tasks) - len(pending)

    def split(results: list) -> tuple[list[dict], list[dict]]:
        return _assemble(todo, config, results[:cells]), results[cells:]

    workers = min(os.cpu_count() or 1, MAX_WORKERS, len(tasks))
    if workers < 2 or sum(item.k for item in todo) + sum(item.cost for item in pending) < PARALLEL_FROM_K:
        yield lambda progress: split(_run_here(tasks, progress))
        return
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor, as_completed

    preload_diagnostics()
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        order = sorted(range(len(tasks)), key=lambda i: (-tasks[i][2], i))
        futures = {i: pool.submit(tasks[i][0], *tasks[i][1]) for i in order}

        def collect(progress: Progress) -> tuple[list[dict], list[dict]]:
            progress("diagnostics", 0, len(tasks))
            for done, _ in enumerate(as_completed(futures.values()), 1):
                progress("diagnostics", done, len(tasks))
            return split([futures[i].result() for i in range(len(tasks))])

        yield collect
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _diagnostic_tasks(todo: list[CellInputs], config: Config) -> list[tuple[Callable, tuple, float]]:
    """(function, arguments, cost) per task: the cells' diagnostics, then their sensitivity parts."""
    from metapsych.analysis.cells import SENSITIVITY_PARTS, cell_diagnostics, sensitivity_rows

    tasks: list[tuple[Callable, tuple, float]] = [
        (cell_diagnostics, (item.yi, item.vi, list(item.trials), config), float(item.k)) for item in todo]
    if config.sensitivity:
        weight = {"three_level": 2.0, "three_level_che": 1.5}  # relative cost per effect, roughly
        tasks += [(sensitivity_rows, (item.effects, config, models),
                   weight.get(models[0], 1.0) * len(item.effects["yi"]))
                  for item in todo for models in SENSITIVITY_PARTS]
    return tasks


def _run_here(tasks: list[tuple[Callable, tuple, float]], progress: Progress) -> list:
    progress("diagnostics", 0, len(tasks))
    results = []
    for func, args, _ in tasks:
        results.append(func(*args))
        progress("diagnostics", len(results), len(tasks))
    return results


def _assemble(todo: list[CellInputs], config: Config, results: list) -> list[dict]:
    """Per cell: its diagnostics task's result plus the sensitivity table made of its parts' results."""
    from metapsych.analysis.cells import SENSITIVITY_PARTS, sensitivity_block

    n, parts = len(todo), len(SENSITIVITY_PARTS)
    out = []
    for i, item in enumerate(todo):
        if not config.sensitivity:
            out.append({**results[i], "sensitivity": []})
            continue
        mine = results[n + i * parts:n + (i + 1) * parts]
        out.append({**results[i], **sensitivity_block(mine, len(item.effects["yi"]))})
    return out


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
    genq = " (with GENQ, metafor confint would use the generalised Q-statistic method instead)" \
        if model.estimator == "GENQ" else ""
    text = (
        f"Effects are Hedges' g (positive values favour the first-named arm). For each cell, several effects "
        f"of one trial were {'aggregated within the trial assuming a correlation of ' + str(dep.rho) if dep.method == 'aggregate' else 'reduced to the first listed effect'}, "
        f"and the trial-level effects were pooled with a random-effects model ({model.estimator} estimator of "
        f"tau^2{', Hartung-Knapp-Sidik-Jonkman confidence intervals and tests' if model.knha else ', Wald-type tests'}, "
        f"{int(round(model.level * 100))}% level). Q-profile intervals are given for tau^2 and I^2 (I^2 as in metafor, "
        f"based on tau^2 and the typical within-study variance)"
        f"{genq}"
        f"{'; prediction intervals as in metafor predict()' if model.prediction_interval else ''}. "
        f"Cells with fewer than {config.min_studies} trials were not pooled; small-study tests were run only "
        f"for cells with at least {config.bias_min_studies} trials. NNTs follow Furukawa and Leucht with a "
        f"control event rate of {config.effect.cer}."
    )
    return {"measure": config.effect.measure, "estimator": model.estimator, "test": test, "tau2_ci": "Q-profile",
            "I2": "metafor tau2-based", "prediction_interval": "metafor predict()" if model.prediction_interval
            else None, "level": model.level, "dependency": dependency, "min_studies": config.min_studies,
            "bias_min_studies": config.bias_min_studies, "cer": config.effect.cer, "text": text}
