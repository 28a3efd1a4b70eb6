"""Benchmark: the full report on the shipped corpus, cold, re-run with no change, and with one trial added.

Copies ``studies/`` and ``configs/`` into a temporary review folder and times ``metapsych run`` there as a
subprocess (imports included, as a user or CI sees it):

1. cold: no cache, no report (target: under 60 s on a 2-core machine);
2. no change: the same command again (target: under 2 s, and nothing written);
3. one trial added: a copy of an existing trial under a new id (target: under 10% of cold).

Run: ``python bench/report_times.py [--keep]``. Prints seconds and ratios to the targets.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary review folder")
    args = parser.parse_args()
    review = Path(tempfile.mkdtemp(prefix="metapsych-bench-"))
    shutil.copytree(ROOT / "studies", review / "studies")
    shutil.copytree(ROOT / "configs", review / "configs")
    # A frozen copy of the code: caches are keyed by the source hash, so edits made while the benchmark
    # runs (in a shared working tree) would otherwise turn the re-runs into cold runs.
    shutil.copytree(ROOT / "metapsych", review / "_code" / "metapsych",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cold = timed_run(review)
    before = snapshot(review / "reports"), snapshot(review / ".metapsych-cache")
    unchanged = timed_run(review)
    wrote_nothing = (snapshot(review / "reports"), snapshot(review / ".metapsych-cache")) == before
    new_id = add_trial(review / "studies")
    added = timed_run(review)
    changes = (review / "reports" / "CHANGES.md").read_text(encoding="utf-8")
    print(f"trials: {len(list((review / 'studies').rglob('*.yaml')))}")
    print(f"cold full report      {cold:7.2f} s   target < 60 s     ({cold / 60:.2f} of target)")
    print(f"no-change re-run      {unchanged:7.2f} s   target < 2 s      ({unchanged / 2:.2f} of target); "
          f"wrote nothing: {wrote_nothing}")
    print(f"one trial added       {added:7.2f} s   target < 10% cold ({added / cold:.1%} of cold); "
          f"CHANGES.md names it: {new_id.replace('-', chr(92) + '-') in changes or new_id in changes}")
    if args.keep:
        print(f"review folder: {review}")
    else:
        shutil.rmtree(review)


if __name__ == "__main__":
    main()
