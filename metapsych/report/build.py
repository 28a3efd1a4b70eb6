"""``write_report``: render a results document into a report folder, incrementally and atomically.

1. Every plot and every cell page gets a key: a hash of what it shows plus the report code's version
   (``jobs.code_version``). Those whose key matches ``manifest.json`` of the existing report are reused;
   the rest, and the summary files (index, README, JSON, CSV, CHANGES), are rendered in memory (the
   plots in worker processes while the pages and summary files are rendered here).
2. If every file would be byte-identical to what is already in ``out_dir``, nothing is written.
3. Otherwise the report is built in a temporary folder next to ``out_dir`` (same filesystem), reused files
   are hard-linked (or copied) into it, and it replaces ``out_dir`` by two renames, so an interrupted run
   leaves the previous report intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metapsych.report import changes as changes_mod
from metapsych.report import html, jobs, markdown, tables, views

MANIFEST = "manifest.json"
RESULTS_LINE = "results.json/"   # manifest key prefix: cell id -> digest (_cell_digests) of the cell on its line
RESULTS_HASH = "results.json"    # manifest key: sha256 of the results.json written, with RESULTS_ORDER
RESULTS_ORDER = "results.json#cells"  # manifest key: the cell id of each line of its cells block, in order
CSV_HASH = "results.csv"         # manifest key: sha256 of the results.csv written, with CSV_LAYOUT
CSV_LAYOUT = "results.csv#cells"  # manifest key: "<cell id> <number of lines>" per cell, in file order


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
    pages_rendered: int      # cell pages rendered (the others were reused)


def write_report(results: dict[str, Any], out_dir: Path, *, changes: dict[str, Any] | None = None,
                 quiet: bool = True, workers: int | None = None) -> ReportSummary:
    """Render ``results`` (the results document) into ``out_dir``; ``changes`` is what changed since the
    last report (``analysis.diff.diff_results``, rendered as CHANGES.md), or None for a first report."""
    out_dir = Path(out_dir)
    _remove_stale_temporaries(out_dir)
    old = _read_manifest(out_dir)
    digests = _cell_digests(results)
    plot_jobs = _plot_jobs(results, digests)
    stems = {j.stem for j in plot_jobs}
    present = _plot_files(out_dir)
    reused_plots = {j.stem for j in plot_jobs
                    if old.get(f"plots/{j.stem}") == j.key and {f"{j.stem}.svg", f"{j.stem}.png"} <= present}
    todo = [j for j in plot_jobs if j.stem not in reused_plots]
    with jobs.rendering(todo, workers or jobs.default_workers()) as rendered:  # plots render meanwhile
        pages = _page_keys(results, stems, digests)
        reused_pages = {rel for rel, key in pages.items() if old.get(rel) == key and (out_dir / rel).is_file()}
        lines = _unchanged_cell_lines(out_dir, old, digests)
        blocks = tables.csv_blocks(results, _unchanged_csv_blocks(out_dir, old, digests))
        files = _summary_files(results, changes, out_dir, stems, lines)
        files["results.csv"] = (tables.csv_header() + "".join(block for _, block in blocks)).encode()
        files.update(_cell_pages(results, stems, skip=reused_pages))
        for job, (svg, png) in zip(todo, rendered()):
            files[f"plots/{job.stem}.svg"], files[f"plots/{job.stem}.png"] = svg, png
    manifest = {**{f"plots/{j.stem}": j.key for j in plot_jobs}, **pages,
                **{f"{RESULTS_LINE}{cid}": digest for cid, digest in digests.items()},
                RESULTS_ORDER: _cell_order(results),
                CSV_LAYOUT: "\n".join(f"{cid} {block.count(chr(10))}" for cid, block in blocks)}
    manifest[RESULTS_HASH] = _indexed_hash(files["results.json"], manifest[RESULTS_ORDER])
    manifest[CSV_HASH] = _indexed_hash(files["results.csv"], manifest[CSV_LAYOUT])
    files[MANIFEST] = (json.dumps(manifest, sort_keys=True, indent=1) + "\n").encode()
    linked = sorted(reused_pages) + [f"plots/{stem}.{ext}" for stem in sorted(reused_plots) for ext in ("svg", "png")]
    changed = not _up_to_date(out_dir, files, linked)
    if changed:
        _replace_atomically(out_dir, files, linked)
    summary = ReportSummary(out_dir, changed, len(files) + len(linked), len(pages),
                            len({j.cell for j in todo if j.cell}), len(todo), len(reused_plots),
                            len(pages) - len(reused_pages))
    if not quiet:
        sys.stderr.write(f"report: {summary.plots_rendered} plots rendered, {summary.plots_reused} reused, "
                         f"{'written to' if changed else 'unchanged in'} {out_dir}\n")
    return summary


def _plot_jobs(results: dict[str, Any], digests: dict[str, str]) -> list[jobs.PlotJob]:
    methods = results.get("methods") or {}
    label = f"Random-effects model ({methods.get('estimator', 'REML')}, {methods.get('test', 'z')})"
    out = []
    for cell in sorted(results.get("cells") or [], key=lambda c: c["id"]):
        if cell.get("status") == "ok" and cell.get("studies"):
            out += jobs.cell_jobs(cell, label, views.bias_min_k(results), digests.get(str(cell["id"])))
    names = sorted(set(results.get("overview") or {}) | set(results.get("moderators") or {})
                   | set(results.get("network") or {}))
    for name in names:
        out += jobs.condition_jobs(name, views.ranking_rows(results, name),
                                   (results.get("moderators") or {}).get(name) or {},
                                   (results.get("network") or {}).get(name))
    return out


def _summary_files(results: dict[str, Any], changes: dict[str, Any] | None, out_dir: Path,
                   stems: set[str], cell_lines: dict[str, str]) -> dict[str, bytes]:
    """The files that summarise every cell, keyed by their path relative to the report folder."""
    cells = views.cell_rows(results)
    not_estimable = sorted(results.get("not_estimable") or [], key=lambda n: str(n.get("cell")))
    conditions = views.conditions(results, stems)
    current_json = tables.results_json(results, cell_lines)
    return {
        "index.html": html.render("index.html.j2", methods=results.get("methods") or {}, conditions=conditions,
                                  cells=cells, not_estimable=not_estimable, **_common(results)).encode(),
        "README.md": markdown.readme(results, {"conditions": conditions, "cells": cells,
                                               "not_estimable": not_estimable}).encode(),
        "results.json": current_json,
        "CHANGES.md": _changes(changes, out_dir, current_json),
    }


def _common(results: dict[str, Any]) -> dict[str, Any]:
    return {"version": results.get("metapsych_version", ""), "schema_version": results.get("schema_version", "")}


def _ok_cells(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in results.get("cells") or [] if c.get("status") == "ok"]


def _cell_digests(results: dict[str, Any]) -> dict[str, str]:
    """Cell id -> the cell's identity for reusing its plots, page and results.json line, with the report code
    version (which decides how it is drawn and written).

    The identity is the cell's ``inputs_sha256``: the engine's hash of everything the cell depends on, which
    also keys its cache. Hashing the content instead would tell a cell fitted in a different batch apart by
    last-bit differences that the report never shows (and cost a serialisation of every cell). A cell
    without ``inputs_sha256`` is identified by its content.
    """
    out = {}
    for cell in results.get("cells") or []:
        if isinstance(cell, dict) and "id" in cell:
            basis = cell.get("inputs_sha256")
            identity = [cell["id"], basis] if isinstance(basis, str) and basis else cell
            out[str(cell["id"])] = _digest([jobs.code_version(), identity])
    return out


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=tables.plain).encode()).hexdigest()


def _unchanged_cell_lines(out_dir: Path, old: dict[str, str], digests: dict[str, str]) -> dict[str, str]:
    """Lines of the existing results.json for cells whose digest is the one the manifest recorded when that
    file was written (so re-serialising them would give the same line); {} if the file is not the one
    the manifest describes (edited, or an older report). The manifest names each line's cell, so no line
    is parsed."""
    data, order = _described_file(out_dir / "results.json", old, RESULTS_HASH, RESULTS_ORDER)
    if data is None:
        return {}
    block = tables.cells_block(data.decode("utf-8"))
    ids = order.split("\n")
    if len(ids) != len(block):
        return {}
    return {cid: line for cid, line in zip(ids, block)
            if cid in digests and old.get(f"{RESULTS_LINE}{cid}") == digests[cid]}


def _unchanged_csv_blocks(out_dir: Path, old: dict[str, str], digests: dict[str, str]) -> dict[str, str]:
    """The rows of the existing results.csv for cells whose digest is the one the manifest recorded, split
    by the line counts the manifest recorded (a field may hold a line break); {} if the file is not the one
    the manifest describes."""
    data, layout = _described_file(out_dir / "results.csv", old, CSV_HASH, CSV_LAYOUT)
    if data is None:
        return {}
    lines = [line + "\n" for line in data.decode("utf-8").split("\n")[:-1]]
    try:
        counts = [(cid, int(n)) for cid, n in (entry.rsplit(" ", 1) for entry in layout.split("\n"))]
    except ValueError:
        return {}
    if sum(n for _, n in counts) != len(lines) - 1:
        return {}
    blocks, start = {}, 1
    for cid, n in counts:
        if cid in digests and old.get(f"{RESULTS_LINE}{cid}") == digests[cid]:
            blocks[cid] = "".join(lines[start:start + n])
        start += n
    return blocks


def _described_file(path: Path, old: dict[str, str], hash_key: str, index_key: str) -> tuple[bytes | None, str]:
    """The file's bytes and the manifest's index of its lines, when the hash the manifest recorded covers
    both (so neither the file nor the index was edited since); (None, '') otherwise."""
    data, index = _read_bytes(path), old.get(index_key)
    if data is None or not isinstance(index, str) or old.get(hash_key) != _indexed_hash(data, index):
        return None, ""
    return data, index


def _indexed_hash(data: bytes, index: str) -> str:
    """sha256 of a file's bytes together with the manifest's index of its lines."""
    return hashlib.sha256(data + b"\0" + index.encode()).hexdigest()


def _cell_order(results: dict[str, Any]) -> str:
    """The cell id of every element of the results' cells list, one per line ('' for one without an id)."""
    cells = results.get("cells") or []
    return "\n".join(str(c["id"]) if isinstance(c, dict) and "id" in c else "" for c in cells)


def _page_keys(results: dict[str, Any], stems: set[str], digests: dict[str, str]) -> dict[str, str]:
    """``cells/<id>.html`` -> hash of everything the page shows (cell, methods, citations, its plots)."""
    trials = results.get("trials") or {}
    keys = {}
    for cell in _ok_cells(results):
        name = jobs.safe_name(cell["id"], "cells.id")
        cited = {s.get("trial"): (trials.get(s.get("trial")) or {}).get("citation") for s in cell.get("studies") or []}
        payload = [digests[str(cell["id"])], results.get("methods"), _common(results), sorted(cited.items(), key=str),
                   sorted(s for s in stems if s.startswith(f"{name}."))]
        keys[f"cells/{name}.html"] = _digest(payload)
    return keys


def _cell_pages(results: dict[str, Any], stems: set[str], skip: set[str]) -> dict[str, bytes]:
    """The cell pages that are not reused."""
    pages = {}
    for cell in _ok_cells(results):
        rel = f"cells/{jobs.safe_name(cell['id'], 'cells.id')}.html"
        if rel not in skip:
            pages[rel] = html.render("cell.html.j2", **views.cell_page(results, cell, stems), **_common(results)).encode()
    return pages


def _changes(changes: dict[str, Any] | None, out_dir: Path, current_json: bytes) -> bytes:
    """CHANGES.md; when the results equal those of the report in ``out_dir`` (its results.json has the same
    bytes), the existing file stays as it is, so a re-run with no change rewrites nothing and CHANGES.md
    keeps describing the last real change."""
    existing = out_dir / "CHANGES.md"
    if existing.is_file() and _read_bytes(out_dir / "results.json") == current_json:
        return existing.read_bytes()
    return changes_mod.changes_markdown(changes).encode()


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _read_manifest(out_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _plot_files(out_dir: Path) -> set[str]:
    """Names of the files in the report's plots folder (one listing instead of a check per plot)."""
    try:
        with os.scandir(out_dir / "plots") as entries:
            return {entry.name for entry in entries if entry.is_file()}
    except OSError:
        return set()


def _existing_files(out_dir: Path) -> set[str]:
    if not out_dir.is_dir():
        return set()
    return {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}


def _up_to_date(out_dir: Path, files: dict[str, bytes], linked: list[str]) -> bool:
    """True when out_dir holds exactly these files with these bytes (reused files are identical by key)."""
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
