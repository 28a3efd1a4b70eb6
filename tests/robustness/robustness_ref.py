"""Shared helpers for the robustness tests: fixture loading and metafor-parity comparison."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "robustness"


def load_csv(name: str) -> dict[str, list]:
    """Columns of a fixture CSV; numeric columns as float arrays."""
    with open(FIXTURES / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols: dict[str, list] = {key: [r[key] for r in rows] for key in rows[0]}
    for key in ("yi", "vi", "year"):
        if key in cols:
            cols[key] = np.array([float(x) for x in cols[key]])
    return cols


def load_json(name: str) -> dict:
    """A reference JSON produced by the oracle scripts."""
    return json.loads((FIXTURES / name).read_text())


def assert_close(actual, expected, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """metafor parity: relative tolerance, absolute near zero; None in the reference means NaN/NA."""
    exp = np.array([np.nan if e is None else e for e in np.atleast_1d(expected)], dtype=float)
    act = np.array([np.nan if a is None else a for a in np.atleast_1d(actual)], dtype=float)
    np.testing.assert_allclose(act, exp, rtol=rtol, atol=atol, equal_nan=True)


