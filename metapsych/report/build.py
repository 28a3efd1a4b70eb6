"""``write_report``: render a results document into a report folder, incrementally and atomically.

1. Every text file (HTML, Markdown, JSON, CSV) is rendered in memory; every plot gets a key (a hash of
   what it shows). Plots whose key matches ``plots/index.json`` of the existing report are reused.
2. If every file would be byte-identical to what is already in ``out_dir``, nothing is written.
3. Otherwise the report is built in a temporary folder next to ``out_dir`` (same filesystem), reused plots
   are hard-linked (or copied) into it, and it replaces ``out_dir`` by two renames, so an interrupted run
   leaves the previous report intact.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metapsych.report import changes as changes_mod
from metapsych.report import html, jobs, markdown, tables, views

MANIFEST = "plots/index.json"


@dataclass(frozen=True)
class ReportSummary:
    """What a report build did."""

    out_dir: Path
    changed: bool            # False when every file was already up to date (nothing written)
    files: int               # files in the report
    cells: int               # cells with a page
    cells_rendered: int      # cells with at least one plot re-rendered
    plots_rendered: int      # figures rendered (each saved as SVG and PNG)
    plots_reused: int        # figures reused from the previous report


def write_report(results: dict[str, Any], out_dir: Path, *, previous: dict[str, Any] | None = None,
                 quiet: bool = True, workers: int | None = None) -> ReportSummary:
    """Render ``results`` (the results document) into ``out_dir``; ``previous`` is the last report's
    results document (for CHANGES.md), or None for a first report."""
    out_dir = Path(out_dir)
    _remove_stale_temporaries(out_dir)
    plot_jobs = _plot_jobs(results)
    old_manifest = _read_manifest(out_dir)
    reuse = [j for j in plot_jobs if old_manifest.get(j.stem) == j.key and _plot_files_exist(out_dir, j.stem)]
    reused = {j.stem for j in reuse}
    todo = [j for j in plot_jobs if j.stem not in reused]
    rendered = dict(zip((j.stem for j in todo), jobs.render_all(todo, workers or jobs.default_workers())))
    files = _text_files(results, previous, out_dir, {j.stem for j in plot_jobs})
    files[MANIFEST] = (json.dumps({j.stem: j.key for j in plot_jobs}, sort_keys=True, indent=1) + "\n").encode()
    for stem, (svg, png) in rendered.items():
        files[f"plots/{stem}.svg"], files[f"plots/{stem}.png"] = svg, png
    linked = [f"plots/{stem}.{ext}" for stem in sorted(reused) for ext in ("svg", "png")]
    changed = not _up_to_date(out_dir, files, linked)
    if changed:
        _replace_atomically(out_dir, files, linked)
    summary = ReportSummary(out_dir, changed, len(files) + len(linked),
                            sum(1 for c in results.get("cells") or [] if c.get("status") == "ok"),
                            len({j.cell for j in todo if j.cell}), len(todo), len(reuse))
    if not quiet:
        sys.stderr.write(f"report: {summary.plots_rendered} plots rendered, {summary.plots_reused} reused, "
                         f"{'written to' if changed else 'unchanged in'} {out_dir}\n")
    return summary


def _plot_jobs(results: dict[str, Any]) -> list[jobs.PlotJob]:
    methods = results.get("methods") or {}
    label = f"Random-effects model ({methods.get('estimator', 'REML')}, {methods.get('test', 'z')})"
    out = []
    for cell in sorted(results.get("cells") or [], key=lambda c: c["id"]):
        if cell.get("status") == "ok" and cell.get("studies"):
            out += jobs.cell_jobs(cell, label, views.bias_min_k(results))
    names = sorted(set(results.get("overview") or {}) | set(results.get("moderators") or {})
                   | set(results.get("network") or {}))
    for name in names:
        out += jobs.condition_jobs(name, views.ranking_rows(results, name),
                                   (results.get("moderators") or {}).get(name) or {},
                                   (results.get("network") or {}).get(name))
    return out


def _text_files(results: dict[str, Any], previous: dict[str, Any] | None, out_dir: Path,
                stems: set[str]) -> dict[str, bytes]:
    """Every non-plot file of the report, keyed by its path relative to the report folder."""
    common = {"version": results.get("metapsych_version", ""), "schema_version": results.get("schema_version", "")}
    cells = views.cell_rows(results)
    not_estimable = sorted(results.get("not_estimable") or [], key=lambda n: str(n.get("cell")))
    files = {
        "index.html": html.render("index.html.j2", methods=results.get("methods") or {},
                                  conditions=views.conditions(results, stems), cells=cells,
                                  not_estimable=not_estimable, **common).encode(),
        "README.md": markdown.readme(results, {"conditions": views.conditions(results, stems), "cells": cells,
                                               "not_estimable": not_estimable}).encode(),
        "results.json": tables.results_json(results),
        "results.csv": tables.results_csv(results),
        "CHANGES.md": _changes(results, previous, out_dir),
    }
    for cell in results.get("cells") or []:
        if cell.get("status") == "ok":
            name = jobs.safe_name(cell["id"], "cells.id")
            files[f"cells/{name}.html"] = html.render("cell.html.j2", **views.cell_page(results, cell, stems),
                                                      **common).encode()
    return files


def _changes(results: dict[str, Any], previous: dict[str, Any] | None, out_dir: Path) -> bytes:
    """CHANGES.md; when nothing changed since ``previous``, the existing file stays as it is, so a re-run
    with no change rewrites nothing and CHANGES.md keeps describing the last real change."""
    existing = out_dir / "CHANGES.md"
    if previous is not None and tables.canonical(previous) == tables.canonical(results) and existing.is_file():
        return existing.read_bytes()
    return changes_mod.changes_markdown(previous, results).encode()


def _read_manifest(out_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _plot_files_exist(out_dir: Path, stem: str) -> bool:
    return all((out_dir / "plots" / f"{stem}.{ext}").is_file() for ext in ("svg", "png"))


def _existing_files(out_dir: Path) -> set[str]:
    if not out_dir.is_dir():
        return set()
    return {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}


def _up_to_date(out_dir: Path, files: dict[str, bytes], linked: list[str]) -> bool:
    """True when out_dir holds exactly these files with these bytes (reused plots are identical by key)."""
    if _existing_files(out_dir) != set(files) | set(linked):
        return False
    for rel, data in files.items():
        path = out_dir / rel
        if path.stat().st_size != len(data) or path.read_bytes() != data:
            return False
    return True


def _replace_atomically(out_dir: Path, files: dict[str, bytes], linked: list[str]) -> None:
    """Build the new report in a sibling temporary folder, then swap it in with two renames."""
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{out_dir.name}.tmp-{os.getpid()}"
    old = parent / f".{out_dir.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for rel, data in sorted(files.items()):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for rel in linked:
            _link_or_copy(out_dir / rel, tmp / rel)
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out_dir.exists():
            os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Leftovers of an interrupted run (the previous report itself is never touched)."""
    parent = out_dir.parent
    if parent.is_dir():
        for pattern in (f".{out_dir.name}.tmp-*", f".{out_dir.name}.old-*"):
            for path in parent.glob(pattern):
                shutil.rmtree(path, ignore_errors=True)
