"""results.json / results.csv: stable, sorted, fixed float formatting, documented columns."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from metapsych.report.tables import CSV_COLUMNS, canonical, results_csv, results_json


def test_json_is_sorted_rounded_and_null_for_nan(small_results: dict[str, Any]) -> None:
    small_results["cells"][0]["main"]["tau2"] = float("nan")
    small_results["cells"][0]["main"]["estimate"] = 0.12345678901234
    data = results_json(small_results)
    assert data == results_json(json.loads(data))  # a fixed point: re-writing changes nothing
    doc = json.loads(data)
    assert doc["cells"][0]["main"]["tau2"] is None
    assert doc["cells"][0]["main"]["estimate"] == 0.123456789
    assert list(doc) == sorted(doc)
    assert b"NaN" not in data


def test_canonical_rounds_to_ten_significant_digits() -> None:
    import numpy as np

    assert canonical({"a": [1.0 / 3.0, float("inf"), 2, None, "x"]}) == {"a": [0.3333333333, None, 2, None, "x"]}
    assert canonical({"k": np.int64(3), "v": np.array([0.1, np.nan]), "t": (1, 2)}) == {"k": 3, "v": [0.1, None],
                                                                                         "t": [1, 2]}


def test_csv_has_one_row_per_cell_and_model(small_results: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(results_csv(small_results).decode())))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    expected = 0
    for cell in small_results["cells"]:
        expected += 1 if not cell["main"] else 1 + len(cell["sensitivity"]) + sum(
            len(b["levels"]) for b in cell["subgroups"].values())
    assert len(rows) == expected
    first = next(r for r in rows if r["status"] == "ok" and r["model"] == "main")
    cell = next(c for c in small_results["cells"] if c["id"] == first["cell"])
    assert float(first["estimate"]) == float(f"{cell['main']['estimate']:.10g}")
    assert float(first["tau2_ci_upper"]) == float(f"{cell['main']['tau2_ci'][1]:.10g}")
    assert {r["model"] for r in rows} >= {"main", "overall", "low_rob"}
    assert any(r["model"].startswith("subgroup:format=") for r in rows)
    not_ok = next(r for r in rows if r["status"] == "too_few_trials")
    assert not_ok["estimate"] == "" and not_ok["message"]
