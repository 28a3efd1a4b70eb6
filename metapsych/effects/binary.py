"""Binary-outcome effect sizes (log OR, log RR, RD), reproducing metafor ``escalc`` exactly.

Cells follow escalc: ``ai``/``bi`` = events / non-events in arm 1, ``ci``/``di`` in arm 2. metafor's
defaults are used: ``add=1/2, to="only0"`` adds 1/2 to all four cells of a table with any zero cell,
and metafor applies this to RD as well as OR and RR. Double-zero tables (no events, or only events,
in both arms) are *kept* here as metafor keeps them (``drop00=FALSE``); :mod:`compute` is where
they are excluded from OR/RR with a recorded reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metapsych.effects.continuous import Effects

ADD = 0.5


@dataclass(frozen=True)
class Table2x2:
    """A 2x2 table per row, after any zero-cell correction, with what was done to it."""

    ai: np.ndarray
    bi: np.ndarray
    ci: np.ndarray
    di: np.ndarray
    corrected: np.ndarray  # bool: 1/2 was added to this row's cells
    double_zero: np.ndarray  # bool: ai = ci = 0 or bi = di = 0 (before correction)


def table_from_events(event1: object, total1: object, event2: object, total2: object) -> Table2x2:
    """Build the uncorrected tables from events and totals per arm."""
    e1, n1, e2, n2 = (np.asarray(x, dtype=float) for x in (event1, total1, event2, total2))
    return table_from_cells(e1, n1 - e1, e2, n2 - e2, add=0.0)


def table_from_cells(ai: object, bi: object, ci: object, di: object, add: float = ADD) -> Table2x2:
    """Apply metafor's ``to="only0"`` correction: add ``add`` to every cell of a table with a zero cell."""
    a, b, c, d = (np.asarray(x, dtype=float) for x in (ai, bi, ci, di))
    any_zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    double_zero = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    corrected = any_zero & (add != 0)
    inc = np.where(corrected, add, 0.0)
    return Table2x2(a + inc, b + inc, c + inc, d + inc, corrected, double_zero)


def log_or(t: Table2x2) -> Effects:
    """``escalc("OR")``: log(ai di / (bi ci)), variance 1/ai + 1/bi + 1/ci + 1/di."""
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(t.ai * t.di / (t.bi * t.ci))
        vi = 1 / t.ai + 1 / t.bi + 1 / t.ci + 1 / t.di
    return Effects(yi, vi)


def log_rr(t: Table2x2) -> Effects:
    """``escalc("RR")``: log((ai/n1) / (ci/n2)), variance 1/ai - 1/n1 + 1/ci - 1/n2."""
    n1, n2 = t.ai + t.bi, t.ci + t.di
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(t.ai / n1) - np.log(t.ci / n2)
        vi = 1 / t.ai - 1 / n1 + 1 / t.ci - 1 / n2
    return Effects(yi, vi)


def risk_difference(t: Table2x2) -> Effects:
    """``escalc("RD", vtype="LS")``: p1 - p2, variance p1(1-p1)/n1 + p2(1-p2)/n2."""
    n1, n2 = t.ai + t.bi, t.ci + t.di
    p1, p2 = t.ai / n1, t.ci / n2
    return Effects(p1 - p2, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
