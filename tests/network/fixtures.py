"""Loading the committed network fixtures (contrast CSVs and nma_ref.R oracle JSON) and comparing to them."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "network"


def load_rows(name: str) -> list[dict[str, str]]:
    """Rows of ``tests/fixtures/network/<name>.csv``."""
    with (FIXTURES / f"{name}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def columns(name: str) -> dict[str, Any]:
    """The fit_network arguments of a contrast CSV (n1/n2 when present)."""
    rows = load_rows(name)
    out: dict[str, Any] = {
        "study": [r["study"] for r in rows],
        "treat1": [r["treat1"] for r in rows],
        "treat2": [r["treat2"] for r in rows],
        "yi": [float(r["yi"]) for r in rows],
        "vi": [float(r["vi"]) for r in rows],
    }
    if "n1" in rows[0]:
        out["n1"] = [float(r["n1"]) for r in rows]
        out["n2"] = [float(r["n2"]) for r in rows]
    return out


def oracle(name: str) -> dict[str, Any]:
    """The oracle output ``<name>-oracle.json``."""
    return json.loads((FIXTURES / f"{name}-oracle.json").read_text())


def assert_close(actual: float | None, expected: float, rtol: float, atol: float = 1e-8, what: str = "") -> None:
    """Fail with a readable message unless |actual - expected| <= atol + rtol |expected|."""
    assert actual is not None and math.isfinite(actual), f"{what}: got {actual}, expected {expected}"
    assert abs(actual - expected) <= atol + rtol * abs(expected), f"{what}: {actual!r} != {expected!r}"
