"""Plausibility checks on the numbers an effect size is computed from.

Every bad value in the table is reported at once, each located by file, line and field, so that a
reviewer can fix a whole file in one pass (exit code 2 through :class:`DataError`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from metapsych.errors import Problem

ARMS = ("arm1", "arm2")

# field pattern -> (test that flags a bad value, problem text, expected text)
Rule = tuple[Callable[[np.ndarray], np.ndarray], str, str]
_POSITIVE: Rule = (lambda x: x <= 0, "must be positive", "a value > 0")
_N: Rule = (lambda x: x < 2, "sample size below 2", "n >= 2")
_PROB: Rule = (lambda x: (x <= 0) | (x >= 1), "p-value outside (0, 1)", "0 < p < 1")
_ICC: Rule = (lambda x: (x < 0) | (x >= 1), "ICC outside [0, 1)", "0 <= ICC < 1")
_CLUSTER: Rule = (lambda x: x < 1, "mean cluster size below 1", "cluster size >= 1")
_NONNEG: Rule = (lambda x: x < 0, "must not be negative", "a value >= 0")

RULES: dict[str, Rule] = {
    **{f"sd_{a}": _POSITIVE for a in ARMS},
    **{f"sd_change_{a}": _POSITIVE for a in ARMS},
    **{f"n_{a}": _N for a in ARMS},
    **{f"n_change_{a}": _N for a in ARMS},
    **{f"totaln_{a}": _N for a in ARMS},
    **{f"event_{a}": _NONNEG for a in ARMS},
    **{f"cluster_size_{a}": _CLUSTER for a in ARMS},
    **{f"icc_{a}": _ICC for a in ARMS},
    "precalc_g_se": _POSITIVE,
    "precalc_log_rr_se": _POSITIVE,
    "p_value": _PROB,
    "f_value": _NONNEG,
    "icc": _ICC,
    "cluster_size": _CLUSTER,
}
NUMERIC = (
    [f"{k}_{a}" for k in ("mean", "sd", "n", "mean_change", "sd_change", "n_change", "event", "totaln") for a in ARMS]
    + ["precalc_g", "precalc_g_se", "precalc_ci_lower", "precalc_ci_upper", "precalc_log_rr", "precalc_log_rr_se"]
    + ["t_value", "f_value", "p_value"]
    + ["icc", "cluster_size", "icc_arm1", "cluster_size_arm1", "icc_arm2", "cluster_size_arm2"]
)


def locations(table: pd.DataFrame, file: str) -> tuple[list[str], list[int | None]]:
    """File and line of every row: ``source_file``/``source_line`` if present, else ``file`` and row + 2."""
    n = len(table)
    files = table["source_file"].astype(str).tolist() if "source_file" in table else [file] * n
    if "source_line" in table:
        lines = [None if pd.isna(v) else int(v) for v in table["source_line"]]
    else:
        lines = list(range(2, n + 2))
    return files, lines


def numeric_columns(table: pd.DataFrame, file: str) -> tuple[dict[str, np.ndarray], list[Problem]]:
    """The numeric input columns as float arrays (absent columns: all NaN) and every non-number found."""
    files, lines = locations(table, file)
    values: dict[str, np.ndarray] = {}
    problems: list[Problem] = []
    for col in NUMERIC:
        if col not in table:
            values[col] = np.full(len(table), np.nan)
            continue
        raw = table[col]
        num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        for i in np.flatnonzero(np.isnan(num) & raw.notna().to_numpy()):
            problems.append(Problem(files[i], lines[i], col, f"not a number: {raw.iloc[i]!r}", "a number"))
        for i in np.flatnonzero(np.isinf(num)):
            problems.append(Problem(files[i], lines[i], col, f"infinite value: {raw.iloc[i]}", "a finite number"))
        values[col] = num
    return values, problems


def check_values(values: dict[str, np.ndarray], table: pd.DataFrame, file: str) -> list[Problem]:
    """Range problems (SD <= 0, n < 2, events outside [0, n], p outside (0, 1), SE <= 0, ...)."""
    files, lines = locations(table, file)
    problems: list[Problem] = []
    for col, (bad, text, expected) in RULES.items():
        x = values[col]
        with np.errstate(invalid="ignore"):
            flagged = np.flatnonzero(~np.isnan(x) & bad(x))
        problems += [Problem(files[i], lines[i], col, f"{text}: {x[i]:g}", expected) for i in flagged]
    for arm in ARMS:
        ev, tot = values[f"event_{arm}"], values[f"totaln_{arm}"]
        with np.errstate(invalid="ignore"):
            flagged = np.flatnonzero(ev > tot)
        problems += [
            Problem(files[i], lines[i], f"event_{arm}", f"{ev[i]:g} events out of {tot[i]:g}",
                    f"events <= totaln_{arm}")
            for i in flagged
        ]
    problems += _unpaired(values, files, lines)
    lo, hi = values["precalc_ci_lower"], values["precalc_ci_upper"]
    with np.errstate(invalid="ignore"):
        flagged = np.flatnonzero(lo >= hi)
    problems += [
        Problem(files[i], lines[i], "precalc_ci_upper", f"CI upper {hi[i]:g} not above lower {lo[i]:g}",
                "lower < upper")
        for i in flagged
    ]
    return problems


def _unpaired(values: dict[str, np.ndarray], files: list[str], lines: list[int | None]) -> list[Problem]:
    """An ICC without a cluster size (or the reverse) cannot give a design effect."""
    problems = []
    for icc, size in (("icc", "cluster_size"), ("icc_arm1", "cluster_size_arm1"), ("icc_arm2", "cluster_size_arm2")):
        has_icc, has_size = ~np.isnan(values[icc]), ~np.isnan(values[size])
        for i in np.flatnonzero(has_icc != has_size):
            given, other = (icc, size) if has_icc[i] else (size, icc)
            problems.append(Problem(files[i], lines[i], other, f"missing although {given} is given",
                                    f"both {icc} and {size} for a design effect"))
    return problems
