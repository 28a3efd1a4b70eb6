"""``metapsych run``: build the report from studies/ and the config, incrementally.

A run first fingerprints its inputs (every trial file's bytes, the config, the review's vocabulary, the
metapsych version and source code, and the report folder's results.json). When the fingerprint equals the one recorded by
the last successful run, nothing has changed: the command says so and writes nothing, without importing
the analysis stack. Otherwise the engine runs with its content-addressed cache (only changed trial files
are parsed, only changed cells are fitted) and the report writer rewrites only files whose content changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path


CACHE_DIR = ".metapsych-cache"
MANIFEST = "last-run.json"
DIFF_BASIS = "last-results.json"  # what the next run's diff reads of the report (see _previous_results)
# The run spreads its work over worker processes, one per core. A multi-threaded BLAS in each of them
# (OpenBLAS starts a thread per core, which spins while it waits) oversubscribes the cores: it made the
# three-level fits of a large cell three times slower on a busy two-core machine. The user's setting wins.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run(studies: Path, *, config: Path, out: Path, quiet: bool = False, force: bool = False) -> int:
    """Build the report; 0 on success, 2 for bad data or config (raised), 1 if the analysis fails (raised)."""
    from metapsych.errors import InputError

    single_threaded_blas()
    if not studies.exists():
        raise InputError(f"{studies}: no such folder (expected the folder of trial files, e.g. studies/)")
    cache_dir = studies.resolve().parent / CACHE_DIR
    inputs = input_hashes(studies, config)
    if not force and _recorded(cache_dir) == fingerprint(inputs, out):
        _say(quiet, f"{out}: up to date (no trial, config or version change); nothing written")
        return 0
    results = _analyse(studies, config, cache_dir, quiet=quiet, force=force)
    summary = _write(results, out, quiet, cache_dir)
    _record(cache_dir, fingerprint(inputs, out))  # the inputs as read before the run, if edited since
    _say(quiet, f"{out}: {_describe(summary)}")
    return 0


def single_threaded_blas() -> None:
    """One BLAS thread per process unless the environment says otherwise; effective only before numpy is
    first imported (``metapsych run`` imports it after this)."""
    for name in BLAS_THREADS:
        os.environ.setdefault(name, "1")


def input_hashes(studies: Path, config: Path) -> list[tuple[str, bytes]]:
    """(path, sha256) of the config, the review's vocabulary and every trial file; cheap (hashlib only) so
    that a no-change run is fast."""
    from metapsych.analysis.cache import trial_files
    from metapsych.analysis.trials import VOCABULARY_FILE

    vocabulary = studies.resolve().parent / VOCABULARY_FILE
    return [(str(path), _file_hash(path)) for path in [config, vocabulary, *trial_files(studies)]]


def fingerprint(inputs: list[tuple[str, bytes]], out: Path) -> str:
    """sha256 over everything a report depends on: the metapsych code, the ``inputs`` and the report's
    results.json (a report edited or removed since is rebuilt)."""
    from metapsych.analysis.cache import code_version

    digest = hashlib.sha256(code_version(()).encode())
    for path, file_hash in [*inputs, (str(out / "results.json"), _file_hash(out / "results.json"))]:
        digest.update(path.encode() + b"\0" + file_hash)
    return digest.hexdigest()


def _file_hash(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest() if path.is_file() else b"-"


def _analyse(studies: Path, config: Path, cache_dir: Path, *, quiet: bool, force: bool) -> dict:
    from metapsych.analysis.cache import Cache
    from metapsych.analysis.config import load_config
    from metapsych.analysis.run import build_results
    from metapsych.commands.progress import progress_reporter

    settings = load_config(config)
    cache = Cache(cache_dir, read=not force)
    with progress_reporter(quiet) as progress:
        results = build_results(studies, settings, cache=cache, progress=progress)
    cache.prune(("cells", "trials", "networks", "moderators"))
    return results


def _write(results: dict, out: Path, quiet: bool, cache_dir: Path) -> object:
    from metapsych.analysis.diff import diff_results
    from metapsych.report.build import write_report
    from metapsych.report.html import cache_compiled_templates

    previous = _previous_results(out, cache_dir)
    changes = None if previous is None else diff_results(previous, results)
    cache_compiled_templates(cache_dir / "templates")
    summary = write_report(results, out, changes=changes, quiet=quiet)
    _keep_diff_basis(results, out, cache_dir)
    return summary


def _previous_results(out: Path, cache_dir: Path) -> dict | None:
    """What the diff reads of the report's results.json: the part the last run kept in the cache when the
    file is the one that run wrote (parsing the whole file costs a tenth of a second), else the file itself;
    None without a usable previous report (a damaged or foreign results.json: CHANGES.md then starts afresh)."""
    from metapsych.commands.diff import read_results
    from metapsych.errors import DataError

    path = out / "results.json"
    if not path.is_file():
        return None
    try:
        kept = json.loads((cache_dir / DIFF_BASIS).read_text(encoding="utf-8"))
        if kept["results_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and isinstance(kept["basis"], dict):
            return kept["basis"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        return read_results(path)
    except DataError:
        return None


def _keep_diff_basis(results: dict, out: Path, cache_dir: Path) -> None:
    """Keep what the next run's diff reads of this report, rounded as results.json stores it, with the hash
    of the results.json it stands for."""
    from metapsych.analysis.cache import atomic_write
    from metapsych.analysis.diff import diff_basis
    from metapsych.report.tables import canonical

    digest = hashlib.sha256((out / "results.json").read_bytes()).hexdigest()
    kept = json.dumps({"results_sha256": digest, "basis": canonical(diff_basis(results))}, sort_keys=True).encode()
    target = cache_dir / DIFF_BASIS
    if not target.is_file() or target.read_bytes() != kept:
        atomic_write(target, kept)


def _recorded(cache_dir: Path) -> str | None:
    try:
        return json.loads((cache_dir / MANIFEST).read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None


def _record(cache_dir: Path, fingerprint: str) -> None:
    from metapsych.analysis.cache import atomic_write

    atomic_write(cache_dir / MANIFEST, json.dumps({"fingerprint": fingerprint}).encode())


def _describe(summary: object) -> str:
    if not getattr(summary, "changed", True):
        return "report unchanged; nothing written"
    return (f"report written ({getattr(summary, 'cells', '?')} pooled cells, "
            f"{getattr(summary, 'plots_rendered', '?')} plots rendered, {getattr(summary, 'plots_reused', '?')} reused)")


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        sys.stderr.write(message + "\n")
