"""``metapsych effects``: effect sizes with the formula used for each row (or why there is none).

With FILE, reads a Metapsy-format CSV; without, builds the comparison table of the trials in
``studies/``. Prints a table (or JSON rows with ``--json``) and writes the full table as CSV with ``--out``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from metapsych.errors import DataError, InputError, Problem, not_a_folder

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.data.vocabulary import Vocabulary

STUDIES = Path("studies")
#: columns an effect size can be computed from (at least one must be present)
DATA_COLUMNS = frozenset(
    [f"{stem}_arm{i}" for stem in ("mean", "sd", "mean_change", "sd_change", "event", "totaln") for i in (1, 2)]
    + ["precalc_g", "precalc_g_se", "precalc_ci_lower", "precalc_ci_upper", "precalc_log_rr", "t_value",
       "f_value", "p_value", ".g"]
)
SHOWN = ("study", "instrument", "time", "yi", "sei", "formula", "why_missing")


def run(file: Path | None, measure: str = "g", as_json: bool = False, out: Path | None = None) -> int:
    """Compute the effect table and print or write it; returns the exit code (0)."""
    from metapsych.data.vocabulary import load_vocabulary
    from metapsych.effects.compute import MEASURES, compute_effects

    measure = measure.strip().lower()
    if measure not in MEASURES:
        raise InputError(f"--measure: unknown measure {measure!r} (expected one of {', '.join(MEASURES)})")
    vocabulary = load_vocabulary()
    table, name = (read_csv(file, vocabulary), str(file)) if file is not None else \
        (studies_table(STUDIES), str(STUDIES))
    result = compute_effects(table, measure=measure, vocabulary=vocabulary, file=name)
    if out is not None:
        _write_atomically(out, result.to_csv(index=False).encode("utf-8"))
    if as_json:
        sys.stdout.write(json.dumps(json_rows(result), indent=1, ensure_ascii=False) + "\n")
    elif out is None:
        sys.stdout.write(text_table(result))
    else:
        done = int(result["yi"].notna().sum())
        sys.stdout.write(f"wrote {out}: {len(result)} rows, {done} with an effect size ({measure})\n")
    return 0


def _write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file beside ``path`` and a rename: an interrupted or failed write leaves
    the previous file (or none), never half a table."""
    import os
    import tempfile

    if path.is_dir():
        raise InputError(f"--out {path}: is a folder (expected a CSV file name)")
    blocking = next((p for p in path.parents if p.exists() or p.is_symlink()), None)
    if blocking is not None and (why := not_a_folder(blocking)):
        raise InputError(f"--out {path}: {blocking} {why} (expected a CSV file name in a folder)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # name the option, not the temporary file that could not be made
        raise OSError(exc.errno, exc.strerror, f"--out {path}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_csv(file: Path, vocabulary: Vocabulary) -> pd.DataFrame:
    """A Metapsy-format CSV as a comparison table, its rows oriented as ``import metapsy`` orients them;
    every unreadable cell is reported (exit 2)."""
    from metapsych.data.metapsy import read_metapsy_csv
    from metapsych.data.metapsy_import import orient_like_import

    if not file.exists():  # anything else that is no regular file is refused by the reader, unread
        raise InputError(f"{file}: no such file (expected a Metapsy-format CSV)")
    table = read_metapsy_csv(file, strict=True)
    if not set(table.columns) & DATA_COLUMNS:
        raise DataError(Problem(str(file), 1, "(header)", "no effect-size data columns among: "
                                f"{', '.join(str(c) for c in table.columns if not str(c).startswith('source_'))}",
                                "mean_arm1, sd_arm1, n_arm1, ... or event_arm1, totaln_arm1, ... or "
                                "precalc_g, precalc_g_se (the Metapsy format)"))
    if table.empty:
        raise DataError(Problem(str(file), 2, "(rows)", "the file has a header but no data rows",
                                "one row per comparison"))
    table, turned = orient_like_import(table, vocabulary)
    if turned:
        sys.stderr.write(f"note: {file}: precalc_g turned round on line{'s' if len(turned) > 1 else ''} "
                         f"{', '.join(map(str, turned))}, as `metapsych import` orients it (the database's .g "
                         "gives the other sign, or is raw, as its precalc_g then is)\n")
    return table


def studies_table(path: Path) -> pd.DataFrame:
    """The comparison table of the trial files under ``path``."""
    from metapsych.data.load import load_studies
    from metapsych.data.table import comparison_table

    if not path.exists():
        raise InputError(f"{path}: no such folder (give a Metapsy CSV, or run where studies/ exists)")
    return comparison_table(load_studies(path))


def _plain(value: object) -> object:
    """JSON-safe scalar: missing values (None, NaN, pd.NA) and infinities -> null, numpy scalars -> Python."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()  # type: ignore[union-attr]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_rows(result: pd.DataFrame) -> list[dict[str, object]]:
    """One object per row, every column, missing values as null."""
    return [{str(k): _plain(v) for k, v in row.items()} for row in result.to_dict(orient="records")]


def text_table(result: pd.DataFrame) -> str:
    """A fixed-width summary: who, what, the effect and how it was obtained."""
    cols = [c for c in SHOWN if c in result]
    rows = [[_cell(result[c].iloc[i]) for c in cols] for i in range(len(result))]
    widths = [max([len(c)] + [len(r[j]) for r in rows]) for j, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    done = int(result["yi"].notna().sum())
    lines.append(f"{len(result)} rows, {done} with an effect size ({result['measure'].iloc[0] if len(result) else ''})")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)

