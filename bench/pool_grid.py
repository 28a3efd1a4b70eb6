"""Benchmark: pool the 1,000 x 20 grid (``--by analysis``) with REML and compare, in the same run, against

1. in process: a vectorised numpy DerSimonian-Laird over the same data (target: fit_many within 10x);
2. whole process: ``metapsych pool --by analysis --json`` against a bare ``python -c`` that imports numpy
   and pandas, reads the CSV and does that DL (target: within 1.5x);
3. where ``Rscript`` exists: metafor's ``rma()`` REML loop over the 1,000 analyses (target: the whole
   ``metapsych pool`` process at least 10x faster).

Run: ``python bench/pool_grid.py [--repeat N]``. Prints medians and ratios; needs no network.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GRID = HERE / "data" / "grid_1000x20.csv"

BARE_DL = """
import numpy as np, pandas as pd
d = pd.read_csv({path!r})
g = d['analysis'].to_numpy(); y = d['yi'].to_numpy(); v = d['vi'].to_numpy()
_, g = np.unique(g, return_inverse=True)
w = 1 / v
sw = np.bincount(g, w); swy = np.bincount(g, w * y); sw2 = np.bincount(g, w * w)
k = np.bincount(g)
mu = swy / sw
q = np.bincount(g, w * (y - mu[g]) ** 2)
tau2 = np.maximum(0, (q - (k - 1)) / (sw - sw2 / sw))
ws = 1 / (v + tau2[g])
est = np.bincount(g, ws * y) / np.bincount(g, ws)
print(est.sum())
"""

R_LOOP = """
suppressMessages(library(metafor))
d <- read.csv({path!r})
ids <- unique(d$analysis)
t <- system.time(for (i in ids) {{ s <- d[d$analysis == i, ]; try(rma(s$yi, s$vi, method = "REML"), silent = TRUE) }})
cat(t[["elapsed"]], "\\n")
"""


def numpy_dl(y: np.ndarray, v: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The vectorised DerSimonian-Laird reference (estimate per analysis)."""
    w = 1 / v
    sw = np.bincount(g, w)
    mu = np.bincount(g, w * y) / sw
    q = np.bincount(g, w * (y - mu[g]) ** 2)
    k = np.bincount(g)
    tau2 = np.maximum(0, (q - (k - 1)) / (sw - np.bincount(g, w * w) / sw))
    ws = 1 / (v + tau2[g])
    return np.bincount(g, ws * y) / np.bincount(g, ws)


def interleaved_times(funcs: dict[str, Callable[[], object]], rounds: int, calls: int = 5) -> dict[str, float]:
    """Median over ``rounds`` of each function's best of ``calls`` consecutive calls, in seconds.

    The functions take turns within every round, so a change of load on a shared machine hits all of them
    alike; the best of a few calls is timeit's advice against one-off interruptions.
    """
    for func in funcs.values():  # warm-up
        func()
    best: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, func in funcs.items():
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                func()
                times.append(time.perf_counter() - start)
            best[name].append(min(times))
    return {name: statistics.median(values) for name, values in best.items()}


def process_times(commands: list[list[str]], repeat: int) -> list[float]:
    """Median wall time of each whole process; runs are interleaved so that load changes hit all alike."""
    times: list[list[float]] = [[] for _ in commands]
    for round_ in range(repeat + 1):
        for i, args in enumerate(commands):
            start = time.perf_counter()
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL, cwd=HERE.parent)
            if round_:  # the first round warms the file cache
                times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-r", action="store_true", help="do not run the metafor loop")
    opts = parser.parse_args()

    from metapsych.stats.batch import fit_many

    raw = np.genfromtxt(GRID, delimiter=",", names=True)
    g = np.unique(raw["analysis"], return_inverse=True)[1]
    y, v = raw["yi"], raw["vi"]
    print(f"grid: {GRID.name}, {g.max() + 1} analyses, {y.size} studies; in process: median over {opts.repeat} "
          f"interleaved rounds of the best of 5 calls; processes: median of {opts.repeat} runs")

    times = interleaved_times({
        "dl": lambda: numpy_dl(y, v, g),
        "reml": lambda: fit_many(y, v, g, estimator="REML", qprofile=False),
        "reml_ci": lambda: fit_many(y, v, g, estimator="REML"),
        "dl_ours": lambda: fit_many(y, v, g, estimator="DL", qprofile=False),
    }, opts.repeat)
    t_dl, t_reml, t_reml_ci, t_dl_ours = times["dl"], times["reml"], times["reml_ci"], times["dl_ours"]
    print("in process:")
    print(f"  numpy vectorised DL (reference)         {t_dl * 1e3:8.2f} ms")
    print(f"  fit_many DL                              {t_dl_ours * 1e3:8.2f} ms  ({t_dl_ours / t_dl:5.1f}x DL)")
    print(f"  fit_many REML                            {t_reml * 1e3:8.2f} ms  ({t_reml / t_dl:5.1f}x DL; target 10x)")
    print(f"  fit_many REML + Q-profile CIs            {t_reml_ci * 1e3:8.2f} ms  ({t_reml_ci / t_dl:5.1f}x DL)")

    python = sys.executable
    metapsych = [python, "-m", "metapsych", "pool", str(GRID), "--by", "analysis", "--json"]
    bare = [python, "-c", BARE_DL.format(path=str(GRID))]
    t_cli, t_bare = process_times([metapsych, bare], opts.repeat)
    print("whole process:")
    print(f"  python -c numpy+pandas+read+DL           {t_bare:8.3f} s")
    print(f"  metapsych pool --by analysis --json      {t_cli:8.3f} s  ({t_cli / t_bare:4.2f}x; target 1.5x)")

    if not opts.skip_r and shutil.which("Rscript"):
        out = subprocess.run(["Rscript", "-e", R_LOOP.format(path=str(GRID))], check=True, capture_output=True,
                             text=True)
        t_r = float(out.stdout.split()[-1])
        print(f"  metafor rma() REML loop (in R)           {t_r:8.3f} s  (metapsych process {t_r / t_cli:5.1f}x "
              "faster; target 10x)")


if __name__ == "__main__":
    main()
