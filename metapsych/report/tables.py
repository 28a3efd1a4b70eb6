"""results.json and results.csv: stable keys, stable order, fixed float formatting.

Floats are rounded to 10 significant digits (the results-document convention), NaN and infinities become
null, keys are sorted, so the same results always give the same bytes.

results.csv has one row per cell and model, sorted by cell id, then ``main``, the sensitivity models in
the document's order, and ``subgroup:VARIABLE=LEVEL`` rows. Columns (``CSV_COLUMNS``): the cell's id,
condition, approach, comparator, time, analysis and status; ``model``; k, n_trials, n_participants; the
MODEL keys of the results document, with ``tau2_ci`` and ``I2_ci`` split into ``_lower``/``_upper``
columns; and ``message``. Empty fields are missing values. Columns are only ever appended, never
reordered or renamed.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

#: The columns of results.csv, in order (never reorder or rename; only append).
CSV_COLUMNS = (
    "cell", "condition", "approach", "comparator", "time", "analysis", "status", "model",
    "k", "n_trials", "n_participants", "estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value", "df",
    "tau2", "tau2_ci_lower", "tau2_ci_upper", "tau", "I2", "I2_ci_lower", "I2_ci_upper", "H2",
    "Q", "Q_df", "Q_p", "pi_lower", "pi_upper", "nnt", "estimator", "test", "message",
)
MODEL_KEYS = ("k", "estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value", "df", "tau2", "tau", "I2",
              "H2", "Q", "Q_df", "Q_p", "pi_lower", "pi_upper", "nnt", "estimator", "test", "message")


def canonical(value: Any) -> Any:
    """A JSON-safe copy with floats rounded to 10 significant digits and non-finite floats as None.

    Round-trips through the C JSON encoder and decoder (much faster than walking the document in Python).
    """
    text = json.dumps(value, allow_nan=True, default=plain)
    return json.loads(text, parse_float=_round, parse_constant=lambda _: None)


def plain(value: Any) -> Any:
    """numpy scalars and arrays (if the document holds any) as plain Python values (``json.dumps`` default)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _round(text: str) -> float | None:
    number = float(text)
    return float(f"{number:.10g}") if math.isfinite(number) else None


def results_json(results: dict[str, Any], cell_lines: dict[str, str] | None = None) -> bytes:
    """The results document as written to reports/results.json: keys sorted, one top-level key per line
    and one list element (e.g. one cell) per line, so a changed cell is a one-line diff in git.

    ``cell_lines`` maps cell ids to their line (``cell_line``) from the previous results.json where the cell
    is known not to have changed, to spare serialising it again."""
    reuse = cell_lines or {}
    cells = results.get("cells")
    doc = canonical({key: value for key, value in results.items() if key != "cells"})
    lines = ["{"]
    keys = sorted([*doc, *(["cells"] if "cells" in results else [])])
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        if key == "cells" and isinstance(cells, list) and cells:
            items = [reuse.get(c["id"]) or cell_line(c) if isinstance(c, dict) and "id" in c else cell_line(c)
                     for c in cells]
        else:
            value = doc[key] if key != "cells" else canonical(cells)
            if not (isinstance(value, list) and value):
                lines.append(f" {_compact(key)}: {_compact(value)}{comma}")
                continue
            items = [_compact(v) for v in value]
        lines.append(f" {_compact(key)}: [")
        lines += [f"  {item}," for item in items[:-1]] + [f"  {items[-1]}", f" ]{comma}"]
    lines.append("}")
    return ("\n".join(lines) + "\n").encode()


def cell_line(cell: Any) -> str:
    """One cell (or other list element) as results.json writes it: canonical, compact, keys sorted."""
    return _compact(canonical(cell))


def cells_block(text: str) -> list[str]:
    """The cell lines of a results.json text, in order ([] if it has no cells block)."""
    lines = text.split("\n")
    try:
        start = lines.index(' "cells": [')
    except ValueError:
        return []
    block = []
    for line in lines[start + 1:]:
        if line.startswith(" ]"):
            return block
        block.append(line[2:].removesuffix(","))
    return []


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def results_csv(results: dict[str, Any]) -> bytes:
    """One row per cell and model: ``main``, each sensitivity model, and ``subgroup:VAR=LEVEL``."""
    return (csv_header() + "".join(block for _, block in csv_blocks(results))).encode()


def csv_header() -> str:
    """The header line of results.csv."""
    return _csv_text([CSV_COLUMNS])


def csv_blocks(results: dict[str, Any], reuse: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(cell id, the cell's rows as CSV text) for every cell, sorted by id; ``reuse`` maps ids to their
    text from the previous results.csv where the cell is known not to have changed."""
    known = reuse or {}
    return [(str(cell["id"]), known.get(str(cell["id"])) or _csv_text(
                [_cell_text(row.get(column)) for column in CSV_COLUMNS] for row in _cell_rows(cell)))
            for cell in sorted(results.get("cells", []), key=lambda c: c["id"])]


def _csv_text(rows: Iterable[Iterable[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _cell_rows(cell: dict[str, Any]) -> Iterator[dict[str, Any]]:
    base = {"cell": cell["id"], **{k: cell.get(k) for k in ("condition", "approach", "comparator", "time",
                                                             "analysis", "status", "n_trials", "n_participants")}}
    if not cell.get("main"):
        yield {**base, "model": "main", "k": cell.get("k"), "message": cell.get("message")}
        return
    yield {**base, **_model_columns(cell["main"]), "model": "main"}
    for model in cell.get("sensitivity") or []:
        yield {**base, **_model_columns(model), "model": model.get("model")}
    for variable, block in sorted((cell.get("subgroups") or {}).items()):
        for level, model in sorted((block.get("levels") or {}).items()):
            yield {**base, **_model_columns(model), "model": f"subgroup:{variable}={level}"}


def _model_columns(model: dict[str, Any]) -> dict[str, Any]:
    row = {k: model.get(k) for k in MODEL_KEYS}
    for key in ("tau2_ci", "I2_ci"):
        lo, hi = (model.get(key) or [None, None])[:2]
        row[f"{key[:-3]}_ci_lower"], row[f"{key[:-3]}_ci_upper"] = lo, hi
    return row


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.10g}" if math.isfinite(value) else ""
    return str(value)
