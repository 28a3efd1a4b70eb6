"""Reading Metapsy-format CSV files (the field's standard wide format) as real files come.

Accepts both the published form (``;`` separator, decimal comma, ``NA``, a leading unnamed row-index column,
as written by R's ``write.csv2``) and plain CSV; copes with a BOM, CRLF line ends, quoted fields that span
lines, ``NR`` (not reported), ``Inf`` and a mix of decimal marks. Every row keeps the physical line it
starts on (header = line 1), so problems can be reported as ``FILE:LINE: column: ...``.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from metapsych.data.files import MAX_INPUT_BYTES, read_input
from metapsych.errors import DataError, Problem

if TYPE_CHECKING:
    import pandas as pd

#: Metapsy columns that hold numbers (others are kept as text).
NUMERIC_COLUMNS = frozenset(
    [f"{stem}_arm{i}" for stem in ("mean", "sd", "n", "mean_change", "sd_change", "n_change", "event",
                                   "totaln", "rand", "attr", "n_randomized", "n_sessions", "baseline_m",
                                   "baseline_mean", "baseline_sd", "baseline_n") for i in (1, 2)]
    + [".g", ".g_se", ".log_rr", ".log_rr_se", "precalc_g", "precalc_g_se", "precalc_log_rr",
       "precalc_log_rr_se", "precalc_ci_lower", "precalc_ci_upper", "t_value", "f_value", "p_value",
       "time_weeks", "year", "percent_women", "mean_age", "icc", "cluster_size", "n_sessions",
       "yi", "vi", "sei", "g", "se"]
)
#: Metapsy columns that are always text, even when every value looks like a number.
TEXT_COLUMNS = frozenset(["study", "condition_arm1", "condition_arm2", "multi_arm1", "multi_arm2", "outcome_type",
                          "instrument", "time", "rating", "format", "country", ".id", "full_ref"])
#: no count, score, SD or statistic of a psychotherapy trial comes near this; larger values are typos or
#: corrupt cells, and their squares would overflow in the effect-size formulas
MAX_VALUE = 1e9
MISSING = frozenset(["", "na", "n/a", "nr", "n.r.", "nan", "null", "none", "-", "."])
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_THOUSANDS = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+$")  # 1,000 or 12,500,000: a comma every 3 digits
_INF = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf, "-infinity": -math.inf}


def parse_number(text: str) -> float | None:
    """A number written with either decimal mark; None when missing; raises ValueError when unreadable."""
    value = text.strip()
    if value.lower() in MISSING:
        return None
    if value.lower() in _INF:
        return _INF[value.lower()]
    compact = value.replace(" ", "")
    if not _NUMBER.match(compact):
        raise ValueError(value)
    return float(compact.replace(",", "."))


def parse_flag(value: object) -> bool | None:
    """A yes/no cell (TRUE/FALSE, yes/no, y/n, t/f, 1/0, or a bool), or None when empty or anything else."""
    text = str(value).strip().lower() if value is not None else ""
    if text in FLAG_TRUE:
        return True
    if text in FLAG_FALSE:
        return False
    return None


FLAG_TRUE = frozenset(["true", "t", "yes", "y", "1", "1.0"])
FLAG_FALSE = frozenset(["false", "f", "no", "n", "0", "0.0"])


def decode(raw: bytes, file: str) -> str:
    """UTF-8 (BOM stripped), falling back to Windows-1252 which is what spreadsheet exports often are."""
    if b"\x00" in raw[:4096]:
        raise DataError(Problem(file, None, "(file)", "binary content, not a CSV file", "a text CSV file"))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def sniff_separator(header: str) -> str:
    """``;`` for the published Metapsy form, tab for TSV, otherwise ``,``."""
    counts = {sep: header.count(sep) for sep in (";", ",", "\t")}
    return max(counts, key=lambda sep: (counts[sep], sep == ","))


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(physical line, cells)`` of every non-empty row of a delimited text file (or .gz of one)."""
    file = str(path)
    raw = read_input(path, "a readable CSV")
    text = decode(_gunzip(raw, file) if path.suffix == ".gz" else raw, file)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(Problem(file, 1, "(file)", "the file is empty", "a header row and data rows"))
    separator = sniff_separator(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text), delimiter=separator)
    previous = 0  # the last line read before the current row: an error is reported at the row's first line
    try:
        header = [cell.strip() for cell in next(reader)]
        rows: list[tuple[int, list[str]]] = []
        previous = reader.line_num
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((previous + 1, cells))
            previous = reader.line_num
    except csv.Error as exc:
        raise DataError(Problem(file, previous + 1, "(row)", f"malformed CSV: {exc}", "RFC 4180 CSV")) from None
    if rows and text.count('"') % 2 and any("\n" in cell for cell in rows[-1][1]):
        raise DataError(Problem(file, rows[-1][0], "(row)", "malformed CSV: a quote opened in this row is never "
                                "closed, so the rest of the file was read as one cell", "RFC 4180 CSV"))
    if separator == ",":
        _refuse_comma_numbers(file, header, rows)
    return header, rows


def too_wide(file: str, line: int, cells: list[str], width: int) -> Problem | None:
    """The problem of a row with more cells than its header (as a decimal comma in a comma-separated file
    makes it), which would otherwise shift or drop values silently; None for a row that fits."""
    if len(cells) <= width or not any(cell.strip() for cell in cells[width:]):  # trailing empty cells are fine
        return None
    return Problem(file, line, "(row)", f"row has {len(cells)} cells, the header has {width}",
                   f"at most {width} cells separated like the header (decimal points, not commas, in a "
                   "comma-separated file)")


def _refuse_comma_numbers(file: str, header: list[str], rows: list[tuple[int, list[str]]]) -> None:
    """A quoted number like "1,000" or "12,500" in a comma-separated file may have a decimal comma (1.0) or a
    thousands separator (1000): refused rather than guessed. "1,5" and "0,125" can only be decimal commas
    and stay accepted (spreadsheet exports mix decimal marks); ';'-separated files have decimal commas."""
    for line, cells in rows:
        for j, cell in enumerate(cells):
            if "," in cell and _THOUSANDS.match(cell.strip()):
                column = header[j] if j < len(header) else f"column {j + 1}"
                raise DataError(Problem(file, line, column, f"{cell.strip()!r} in a comma-separated file may be a "
                                        "decimal comma or a thousands separator",
                                        "a number without thousands separators, such as 1000 or 1.0"))


def _gunzip(raw: bytes, file: str) -> bytes:
    """The decompressed content, refused when it would exceed the input limit (a small "zip bomb" expands to
    gigabytes) or is not gzip data."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(MAX_INPUT_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(Problem(file, None, "(file)", f"cannot read file: {exc}", "a readable CSV")) from None
    if len(data) > MAX_INPUT_BYTES:
        raise DataError(Problem(file, None, "(file)", f"decompresses to over {MAX_INPUT_BYTES} bytes",
                                "a readable CSV"))
    return data


def read_metapsy_csv(path: Path, strict: bool = False) -> pd.DataFrame:
    """Read a Metapsy CSV into a DataFrame with numeric columns as float and text columns as str/None.

    Adds ``source_file`` and ``source_line``. Unreadable numbers become NaN and are listed as Problems in
    ``frame.attrs["problems"]``; with ``strict=True`` they raise one DataError listing all of them.
    """
    import pandas as pd

    file = str(path)
    header, rows = read_rows(path)
    if header and header[0] in ("", '""'):
        header, rows = header[1:], [(line, cells[1:]) for line, cells in rows]
    problems = _check_header(header, file)
    if problems:  # a repeated column cannot be told apart from its twin: nothing below can be trusted
        raise DataError(problems)
    columns: dict[str, list[object]] = {name: [] for name in header}
    lines: list[int] = []
    for line, cells in rows:
        if len(cells) != len(header):
            problems.append(Problem(file, line, "(row)", f"row has {len(cells)} cells, the header has {len(header)}",
                                    f"{len(header)} cells separated like the header"))
            cells = (cells + [""] * len(header))[: len(header)]
        lines.append(line)
        for name, cell in zip(header, cells):
            columns[name].append(_cell(name, cell, file, line, problems))
    for name in header:
        if name not in NUMERIC_COLUMNS and name not in TEXT_COLUMNS:
            columns[name] = _numbers_if_all_numeric(columns[name])
    frame = pd.DataFrame(columns)
    for name in header:
        if name in NUMERIC_COLUMNS:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    frame["source_file"] = file
    frame["source_line"] = lines
    frame.attrs["file"] = file
    frame.attrs["problems"] = problems
    if strict and problems:
        raise DataError(problems)
    return frame


def _check_header(header: list[str], file: str) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(Problem(file, 1, name, "column appears twice in the header", "unique column names"))
        seen.add(name)
    return problems


def _numbers_if_all_numeric(values: list[object]) -> list[object]:
    """A text column whose every non-missing value is a number (moderators such as ``rob``) becomes numeric."""
    present = [v for v in values if v is not None]
    if not present:
        return values
    try:
        return [None if v is None else parse_number(str(v)) for v in values]
    except ValueError:
        return values


def _cell(name: str, cell: str, file: str, line: int, problems: list[Problem]) -> object:
    if name not in NUMERIC_COLUMNS:
        text = cell.strip()
        return None if text.lower() in ("", "na") else text
    try:
        value = parse_number(cell)
    except ValueError:
        problems.append(Problem(file, line, name, f"cannot read {cell.strip()!r} as a number",
                                "a number such as 12.5 or 12,5, or NA"))
        return None
    if value is not None and math.isfinite(value) and abs(value) > MAX_VALUE:
        problems.append(Problem(file, line, name, f"{cell.strip()} is implausibly large",
                                f"a value below {MAX_VALUE:g} in absolute size"))
        return None
    return value
