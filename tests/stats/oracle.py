"""Loading the committed metafor fixtures and comparing numbers to them (1e-6 relative, 1e-8 absolute)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "metafor"
RTOL = 1e-6
ATOL = 1e-8


def load_json(name: str) -> dict:
    """The oracle output ``tests/fixtures/metafor/<name>.json``."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def load_csv(name: str) -> list[dict[str, str]]:
    """Rows of the input CSV the fixture was made from."""
    with (FIXTURES / f"{name}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def yi_vi(name: str) -> tuple[np.ndarray, np.ndarray]:
    """yi and vi of an input CSV (vi from sei when the file has sei)."""
    rows = load_csv(name)
    yi = np.array([float(r["yi"]) for r in rows])
    if "vi" in rows[0]:
        return yi, np.array([float(r["vi"]) for r in rows])
    return yi, np.array([float(r["sei"]) for r in rows]) ** 2


def close(actual: float, expected: float | None, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """True when actual matches expected (None = R's NA/NaN/Inf, which must be None or non-finite here)."""
    if expected is None:
        return actual is None or (isinstance(actual, float) and not math.isfinite(actual))
    if math.isinf(expected):
        return actual == expected
    if actual is None or not math.isfinite(actual):
        return False
    return abs(actual - expected) <= max(atol, rtol * abs(expected))


def assert_close(label: str, actual, expected, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Element-wise ``close`` for scalars and sequences, with a message naming the quantity."""
    acts = np.atleast_1d(np.asarray(actual, dtype=float)).tolist()
    exps = expected if isinstance(expected, list) else [expected]
    assert len(acts) == len(exps), f"{label}: length {len(acts)} != {len(exps)}"
    for i, (a, e) in enumerate(zip(acts, exps)):
        assert close(a, e, rtol, atol), f"{label}[{i}]: {a!r} != metafor {e!r}"


def rel_error(actual: float, expected: float) -> float:
    """Relative error, absolute below 1e-8 in magnitude (for reporting the parity reached)."""
    return abs(actual - expected) / max(abs(expected), 1e-2 * ATOL / RTOL)
