"""Which plots a results document needs, their cache keys, and rendering them (in parallel).

A plot job names a plot function by module path and carries its plain-data arguments; its key is the
sha256 of the render version, the function and the arguments, so a plot is re-rendered exactly when
something it shows changed (or the plot code's ``RENDER_VERSION`` was bumped).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from metapsych.errors import DataError, Problem
from metapsych.report.style import RENDER_VERSION

SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MIN_K_FUNNEL = 10
MIN_K_BAUJAT = 5
STUDY_KEYS = ("trial", "study", "yi", "vi", "se", "ci_lower", "ci_upper", "weight", "n_arm1", "n_arm2", "rob")
#: subgroup variable -> the study key that holds each study's level
SUBGROUP_FIELDS = {"control": "comparator", "comparator": "comparator", "format": "format",
                   "risk_of_bias": "rob", "rob": "rob"}
PARALLEL_MIN_JOBS = 6


@dataclass(frozen=True)
class PlotJob:
    """One figure: ``plots/<stem>.svg`` and ``.png`` rendered by ``func(**kwargs)``."""

    stem: str
    func: str
    kwargs: dict[str, Any] = field(hash=False)
    cell: str | None = None
    cost: int = 1
    basis: str | None = None  # a hash the arguments are a function of (the cell's), standing in for them

    @cached_property
    def key(self) -> str:
        """Hash of the code version, the plot function and its arguments (or their ``basis``), computed once."""
        content: Any = self.kwargs if self.basis is None else [self.stem, self.basis]
        payload = json.dumps([code_version(), self.func, content], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the report code and templates (and RENDER_VERSION): cached plots and pages are reused only
    when they would be drawn by the same code."""
    digest = hashlib.sha256(RENDER_VERSION.encode())
    root = Path(__file__).parent
    for path in sorted(list(root.glob("*.py")) + list(root.glob("templates/*"))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def safe_name(value: Any, field_name: str) -> str:
    """A name used in a file path must be a validated id: lower-case letters, digits, '.', '-', '_'."""
    text = str(value)
    if not SAFE_NAME.match(text) or ".." in text:
        raise DataError(Problem("results.json", None, field_name, f"{text!r} cannot be used in a file name",
                                "an id of lower-case letters, digits, '.', '-' or '_'"))
    return text


def netgraph_available() -> bool:
    """The network engineer's ``report.netgraph.network_graph`` may not exist yet: draw graphs only if it does."""
    return importlib.util.find_spec("metapsych.report.netgraph") is not None


def cell_jobs(cell: dict[str, Any], model_label: str, min_k_funnel: int = MIN_K_FUNNEL,
              cell_digest: str | None = None) -> list[PlotJob]:
    """Forest (plus one per subgroup variable), funnel (k >= min_k_funnel), Baujat, cumulative and RoB plots.

    ``cell_digest`` (the cell's identity, ``build._cell_digests``) keys the plots instead of their arguments,
    which are a function of the cell, the label and min_k_funnel: cheaper than hashing every plot's data.
    """
    cid = safe_name(cell["id"], "cells.id")
    studies = [{k: s.get(k) for k in STUDY_KEYS} for s in cell.get("studies") or []]
    main = cell.get("main") or {}
    title = f"{cell.get('approach')} vs {cell.get('comparator')} — {cell.get('condition')}, {cell.get('time')}"
    k = len(studies)
    jobs = [PlotJob(f"{cid}.forest", "metapsych.report.forest:forest_plot",
                    {"studies": studies, "pooled": main, "title": title, "model_label": model_label}, cid, k + 5)]
    for variable, block in sorted((cell.get("subgroups") or {}).items()):
        groups = subgroup_blocks(cell, variable, block)
        if groups:
            jobs.append(PlotJob(f"{cid}.subgroup-{safe_name(variable, 'subgroups')}",
                                "metapsych.report.forest:forest_plot",
                                {"studies": [], "pooled": main, "groups": groups, "subgroup_test": block.get("test"),
                                 "title": f"{title}: by {variable}", "model_label": model_label}, cid, k + 8))
    bias = cell.get("bias") or {}
    if k >= min_k_funnel:
        jobs.append(PlotJob(f"{cid}.funnel", "metapsych.report.funnel:funnel_plot",
                            {"studies": studies, "pooled": main, "filled": trimfill_points(bias),
                             "title": title}, cid, 4))
    baujat = (cell.get("influence") or {}).get("baujat") or []
    if len(baujat) >= MIN_K_BAUJAT:
        jobs.append(PlotJob(f"{cid}.baujat", "metapsych.report.plots:baujat_plot",
                            {"points": baujat, "title": "Baujat plot"}, cid, 3))
    cumulative = cell.get("cumulative") or []
    if len(cumulative) >= 2:
        jobs.append(PlotJob(f"{cid}.cumulative", "metapsych.report.plots:cumulative_plot",
                            {"rows": cumulative, "title": "Cumulative meta-analysis by year"}, cid, len(cumulative) + 3))
    if studies:
        jobs.append(PlotJob(f"{cid}.rob", "metapsych.report.plots:rob_summary_plot",
                            {"studies": [{"rob": s["rob"], "weight": s["weight"]} for s in studies]}, cid, 1))
    if cell_digest is None:
        return jobs
    basis = f"{cell_digest}|{model_label}|{min_k_funnel}"
    return [dataclasses.replace(job, basis=basis) for job in jobs]


def subgroup_blocks(cell: dict[str, Any], variable: str, block: dict[str, Any]) -> list[dict[str, Any]]:
    """Studies split by the subgroup variable, one block per level with its model; [] if the studies
    do not carry that variable (then only the subgroup table is shown)."""
    key = SUBGROUP_FIELDS.get(variable, variable)
    levels = block.get("levels") or {}
    studies = cell.get("studies") or []
    if not levels or not studies or any(str(s.get(key)) not in levels for s in studies):
        return []
    return [{"label": f"{variable} = {level}", "model": model,
             "studies": [{k: s.get(k) for k in STUDY_KEYS} for s in studies if str(s.get(key)) == level]}
            for level, model in sorted(levels.items())]


def trimfill_points(bias: dict[str, Any]) -> list[dict[str, Any]]:
    """Trim-and-fill's imputed studies if the payload has them (``filled`` list, or ``fill_yi``/``fill_vi``)."""
    tf = bias.get("trim_and_fill") or {}
    if isinstance(tf.get("filled"), list):
        return [{"yi": p.get("yi"), "vi": p.get("vi"), "se": p.get("se")} for p in tf["filled"]]
    yi, vi = tf.get("fill_yi") or [], tf.get("fill_vi") or []
    return [{"yi": a, "vi": b} for a, b in zip(yi, vi)]


def condition_jobs(condition: str, ranking: list[dict[str, Any]], moderators: dict[str, Any],
                   network: dict[str, Any] | None) -> list[PlotJob]:
    """Ranking plot, one bubble plot per moderator, the network graph and network forest plot of a condition."""
    name = safe_name(condition, "condition")
    jobs = []
    if ranking:
        jobs.append(PlotJob(f"overview.{name}", "metapsych.report.plots:ranking_plot",
                            {"rows": ranking, "title": f"{condition}: approaches ranked by pooled g"}, None,
                            len(ranking) + 3))
    for moderator, reg in sorted(moderators.items()):
        if not reg.get("points") or reg.get("QM") is None:
            continue  # not estimable: the page says so instead of drawing an empty plot
        test = {k: reg.get(k) for k in ("QM", "QM_df", "QM_p")}
        jobs.append(PlotJob(f"moderator.{name}.{safe_name(moderator, 'moderators')}",
                            "metapsych.report.plots:bubble_plot",
                            {"points": reg.get("points") or [], "moderator": moderator,
                             "coefficients": reg.get("coefficients"), "test": test,
                             "title": f"{condition}: {moderator}"}, None, 4))
    graph = (network or {}).get("graph") or {}
    if graph.get("nodes") and netgraph_available():
        jobs.append(PlotJob(f"network.{name}", "metapsych.report.netgraph:network_graph",
                            {"nodes": graph["nodes"], "edges": graph.get("edges") or []}, None, 4))
    estimates = (network or {}).get("estimates") or {}
    if estimates and (network or {}).get("reference"):
        jobs.append(PlotJob(f"network-forest.{name}", "metapsych.report.netgraph:network_forest",
                            {"estimates": estimates, "reference": network["reference"],
                             "title": f"{condition}: network estimates versus {network['reference']}",
                             "xlabel": "Hedges' g versus"}, None, len(estimates) + 3))
    return jobs


def render_job(job: PlotJob) -> tuple[bytes, bytes]:
    """Import the plot function and call it (runs in a worker process)."""
    module, func = job.func.split(":")
    return getattr(importlib.import_module(module), func)(**job.kwargs)


@contextmanager
def rendering(jobs: Sequence[PlotJob], workers: int) -> Iterator[Callable[[], list[tuple[bytes, bytes]]]]:
    """Start rendering ``jobs``; yields ``collect()``, which returns their (svg, png) bytes in order.

    With several jobs they render in a pool of worker processes (forked after the plot modules and Pillow
    are imported here, so that the workers do not import them each), the most expensive first for better
    load balance, while the caller does other work; with few
    jobs they render here when collected.
    """
    if len(jobs) < PARALLEL_MIN_JOBS or workers <= 1:
        yield lambda: [render_job(job) for job in jobs]
        return
    import concurrent.futures
    import multiprocessing

    from metapsych.report.vector import import_pillow

    import_pillow()  # imported once here, inherited by the workers
    for module in sorted({job.func.split(":")[0] for job in jobs}):
        importlib.import_module(module)
    order = sorted(range(len(jobs)), key=lambda i: (-jobs[i].cost, i))
    method = "fork" if sys.platform.startswith("linux") else None
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
    try:
        futures = {i: pool.submit(render_job, jobs[i]) for i in order}
        yield lambda: [futures[i].result() for i in range(len(jobs))]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def default_workers() -> int:
    """Two workers (the target machine has two cores) unless fewer CPUs are available."""
    return max(1, min(2, os.cpu_count() or 1))

