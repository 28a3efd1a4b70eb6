"""Benchmark: the full report on the shipped corpus, cold, re-run with no change, and with one trial added.

Copies ``studies/`` and ``configs/`` into a temporary review folder and times ``metapsych run`` there as a
subprocess (imports included, as a user or CI sees it):

1. cold: no cache, no report (target: under 60 s on a 2-core machine);
2. no change: the same command again (target: under 2 s, and nothing written);
3. one trial added: a copy of an existing trial under a new id (target: under 10% of cold).

Run: ``python bench/report_times.py [--repeat N] [--keep]``. Prints seconds and ratios to the targets (the
median of N repetitions, each on a fresh copy, and every single time, since timings on a shared machine vary).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METAPSYCH = [sys.executable, "-m", "metapsych"]


def timed_run(review: Path) -> float:
    """Seconds for one ``metapsych run --quiet`` in ``review`` (with the frozen code copy); exits on failure."""
    env = {**os.environ, "PYTHONPATH": str(review / "_code")}
    start = time.perf_counter()
    done = subprocess.run([*METAPSYCH, "run", "--quiet"], cwd=review, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"metapsych run failed ({done.returncode}):\n{done.stderr}")
    return seconds


def snapshot(folder: Path) -> dict[str, int]:
    """Modification times of every file under ``folder``."""
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def add_trial(studies: Path) -> str:
    """Write a copy of the first trial file under a new id; returns the id."""
    source = sorted(studies.rglob("*.yaml"))[0]
    new_id = f"{source.stem}-bench"
    text = re.sub(r"(?m)^id:\s*\S+", f"id: {new_id}", source.read_text(encoding="utf-8"), count=1)
    (source.parent / f"{new_id}.yaml").write_text(text, encoding="utf-8")
    return new_id


def measure(keep: bool) -> tuple[float, float, float, bool, bool]:
    """One repetition on a fresh copy: (cold, no change, one trial added, wrote nothing, CHANGES.md names it)."""
    review = Path(tempfile.mkdtemp(prefix="metapsych-bench-"))
    shutil.copytree(ROOT / "studies", review / "studies")
    shutil.copytree(ROOT / "configs", review / "configs")
    # A frozen copy of the code: caches are keyed by the source hash, so edits made while the benchmark
    # runs (in a shared working tree) would otherwise turn the re-runs into cold runs.
    shutil.copytree(ROOT / "metapsych", review / "_code" / "metapsych",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # Byte-compiled once, as an installed package is: with PYTHONDONTWRITEBYTECODE set (as on some CI
    # machines) every run would otherwise compile the whole package again (~0.3 s).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(review / "_code")], check=True)
    cold = timed_run(review)
    before = snapshot(review / "reports"), snapshot(review / ".metapsych-cache")
    unchanged = timed_run(review)
    wrote_nothing = (snapshot(review / "reports"), snapshot(review / ".metapsych-cache")) == before
    new_id = add_trial(review / "studies")
    added = timed_run(review)
    changes = (review / "reports" / "CHANGES.md").read_text(encoding="utf-8")
    named = new_id.replace("-", chr(92) + "-") in changes or new_id in changes
    if keep:
        print(f"review folder: {review}")
    else:
        shutil.rmtree(review)
    return cold, unchanged, added, wrote_nothing, named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="repetitions (medians are reported)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary review folders")
    args = parser.parse_args()
    runs = [measure(args.keep) for _ in range(max(1, args.repeat))]
    cold, unchanged, added = (statistics.median(r[i] for r in runs) for i in range(3))

    def each(i: int) -> str:
        return ", ".join(f"{r[i]:.2f}" for r in runs)

    trials = len(list((ROOT / "studies").rglob("*.yaml")))
    print(f"trials: {trials} (+1 added); runs: {len(runs)} (medians; each run in brackets)")
    print(f"cold full report      {cold:7.2f} s   target < 60 s     ({cold / 60:.2f} of target)  [{each(0)}]")
    print(f"no-change re-run      {unchanged:7.2f} s   target < 2 s      ({unchanged / 2:.2f} of target); "
          f"wrote nothing: {all(r[3] for r in runs)}  [{each(1)}]")
    print(f"one trial added       {added:7.2f} s   target < 10% cold ({added / cold:.1%} of cold); "
          f"CHANGES.md names it: {all(r[4] for r in runs)}  [{each(2)}]")


if __name__ == "__main__":
    main()
