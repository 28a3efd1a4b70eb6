"""Reading a table of precomputed effect sizes (for ``metapsych pool``) with row-precise errors.

Accepted effect columns (matched case-insensitively): ``yi`` + ``vi``, ``yi`` + ``sei``, or ``g`` + ``se``;
optional ``study`` and ``cluster``; any other column is kept as text (for ``--by``). Plain CSV, ``;``-separated
files with decimal commas, and tab-separated files are read (separator sniffed from the header). No pandas:
``pool`` must start fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from metapsych.data.files import read_input
from metapsych.data.metapsy import MAX_VALUE, decode, parse_number, read_rows, sniff_separator, too_wide
from metapsych.errors import DataError, Problem

EFFECT_COLUMNS = (("yi", "vi"), ("yi", "sei"), ("g", "se"))


@dataclass(frozen=True)
class EffectTable:
    """Effects and sampling variances, one entry per data row, with where each row came from."""

    file: str
    yi: list[float]
    vi: list[float]
    study: list[str]
    lines: list[int]
    columns: dict[str, list[str]]
    effect_columns: tuple[str, str]

    def column(self, name: str) -> list[str] | None:
        """A column's raw text values, matched case-insensitively; None when absent."""
        for key, values in self.columns.items():
            if key.lower() == name.lower():
                return values
        return None


MIN_VARIANCE = 1e-100  # below it 1/vi overflows when cubed (REML information, diagnostics)


def read_effect_table(path: Path) -> EffectTable:
    """Read and validate the file; raise one DataError listing every problem found."""
    file = str(path)
    header, rows = _read(path)
    if header and header[0] in ("", '""'):
        header, rows = header[1:], [(line, cells[1:]) for line, cells in rows]
    lower = {name.lower(): i for i, name in enumerate(header)}
    twice = sorted({name for name in header if name and sum(n.lower() == name.lower() for n in header) > 1})
    if twice:
        raise DataError([Problem(file, 1, name, "the column appears more than once", "unique column names")
                         for name in twice])
    pair = next((p for p in EFFECT_COLUMNS if p[0] in lower and p[1] in lower), None)
    if pair is None:
        raise DataError(Problem(file, 1, "(header)", f"no effect-size columns among: {', '.join(header) or 'none'}",
                                "columns yi and vi, or yi and sei, or g and se"))
    if not rows:
        raise DataError(Problem(file, 2, "(rows)", "the file has a header but no data rows", "one row per study"))
    problems: list[Problem] = []
    iy, iv = lower[pair[0]], lower[pair[1]]
    square = pair[1] != "vi"
    yi: list[float] = []
    vi: list[float] = []
    width = len(header)
    for line, cells in rows:
        if (wide := too_wide(file, line, cells, width)) is not None:
            problems.append(wide)
            continue
        cells[width:] = []  # empty trailing cells (a spreadsheet's export)
        if len(cells) < width:
            cells.extend([""] * (width - len(cells)))
        effect = _number(cells[iy], header[iy], file, line, problems, positive=False)
        spread = _number(cells[iv], header[iv], file, line, problems, positive=True)
        variance = math.nan if spread is None else spread * spread if square else spread
        if variance < MIN_VARIANCE:
            least = f"a standard error of at least {math.sqrt(MIN_VARIANCE):g}" if square else \
                f"a sampling variance of at least {MIN_VARIANCE:g}"
            problems.append(Problem(file, line, header[iv], f"{cells[iv].strip()} is implausibly small",
                                    f"{least} (below it the weights overflow)"))
        yi.append(math.nan if effect is None else effect)
        vi.append(variance)
    if problems:
        raise DataError(problems)
    columns = {name: [cells[i].strip() for _, cells in rows] for i, name in enumerate(header) if i not in (iy, iv)}
    study_col = next((name for name in header if name.lower() == "study"), None)
    study = columns[study_col] if study_col else [str(i + 1) for i in range(len(rows))]
    return EffectTable(file=file, yi=yi, vi=vi, study=study, lines=[line for line, _ in rows], columns=columns,
                       effect_columns=(header[iy], header[iv]))


def _read(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (physical line, cells) of the non-empty rows; fast path for files without quoted newlines."""
    file = str(path)
    text = decode(read_input(path, "a readable CSV"), file)
    if '"' in text or not text.strip():
        return read_rows(path)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    separator = sniff_separator(lines[0])
    header = [cell.strip() for cell in lines[0].split(separator)]
    rows = [(number, line.split(separator)) for number, line in enumerate(lines[1:], start=2) if line.strip()]
    return header, rows


def _number(text: str, field: str, file: str, line: int, problems: list[Problem], positive: bool) -> float | None:
    """Parse one cell, recording a Problem (and returning None) when it is missing, unreadable or out of range."""
    expected = "a positive number" if positive else "a number"
    try:
        value = float(text)
    except ValueError:
        value = None
    try:
        value = parse_number(text) if value is None or not math.isfinite(value) else value
    except ValueError:
        problems.append(Problem(file, line, field, f"'{text.strip()}' is not a number", expected))
        return None
    if value is None:
        problems.append(Problem(file, line, field, "missing value", expected))
        return None
    if not math.isfinite(value):
        problems.append(Problem(file, line, field, f"'{text.strip()}' is not finite", expected))
        return None
    if not positive and abs(value) > MAX_VALUE:  # variances may be extreme: the fit copes with 1e-100..1e300
        problems.append(Problem(file, line, field, f"{text.strip()} is implausibly large",
                                f"an effect size below {MAX_VALUE:g} in absolute size"))
        return None
    if positive and value <= 0:
        problems.append(Problem(file, line, field, f"{text.strip()} is not positive", expected))
        return None
    return value
