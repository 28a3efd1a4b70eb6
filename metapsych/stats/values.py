"""Turning numeric results into JSON-safe values: results never carry NaN or infinities."""

from __future__ import annotations

import math


def finite_or_none(value: object) -> float | None:
    """A finite float, or None for NaN, infinities and missing values."""
    if value is None:
        return None
    x = float(value)  # type: ignore[arg-type]
    return x if math.isfinite(x) else None
