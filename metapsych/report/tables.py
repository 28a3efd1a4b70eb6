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
from collections.abc import Iterator
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
    text = json.dumps(value, allow_nan=True, default=_plain)
    return json.loads(text, parse_float=_round, parse_constant=lambda _: None)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (if the document holds any) as plain Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _round(text: str) -> float | None:
    number = float(text)
    return float(f"{number:.10g}") if math.isfinite(number) else None


def results_json(results: dict[str, Any]) -> bytes:
    """The results document as written to reports/results.json: keys sorted, one top-level key per line
    and one list element (e.g. one cell) per line, so a changed cell is a one-line diff in git."""
    doc = canonical(results)
    lines = ["{"]
    keys = sorted(doc)
    for i, key in enumerate(keys):
        value, comma = doc[key], "," if i < len(keys) - 1 else ""
        if isinstance(value, list) and value:
            items = [_compact(v) for v in value]
            lines.append(f" {_compact(key)}: [")
            lines += [f"  {item}," for item in items[:-1]] + [f"  {items[-1]}", f" ]{comma}"]
        else:
            lines.append(f" {_compact(key)}: {_compact(value)}{comma}")
    lines.append("}")
    return ("\n".join(lines) + "\n").encode()


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def results_csv(results: dict[str, Any]) -> bytes:
    """One row per cell and model: ``main``, each sensitivity model, and ``subgroup:VAR=LEVEL``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in _csv_rows(results):
        writer.writerow([_cell_text(row.get(column)) for column in CSV_COLUMNS])
    return buffer.getvalue().encode()


def _csv_rows(results: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for cell in sorted(results.get("cells", []), key=lambda c: c["id"]):
        base = {"cell": cell["id"], **{k: cell.get(k) for k in ("condition", "approach", "comparator", "time",
                                                                 "analysis", "status", "n_trials",
                                                                 "n_participants")}}
        if not cell.get("main"):
            yield {**base, "model": "main", "k": cell.get("k"), "message": cell.get("message")}
            continue
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
