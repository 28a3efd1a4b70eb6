"""Importing each of the eight Metapsy databases and exporting it back gives the same comparisons: every
converted row comes back once, with its study, arm codes, multi-arm labels, instrument, time point and
numbers; every other row is listed as not converted. The published (';', decimal comma) and the plain CSV
form of a database read identically."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from metapsych.data.load import load_studies
from metapsych.data.metapsy import read_metapsy_csv
from metapsych.data.metapsy_export import export_metapsy
from metapsych.data.metapsy_import import import_metapsy
from metapsych.data.trial_writer import write_trials
from metapsych.data.vocabulary import load_vocabulary

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "metapsy"
DATABASES = {"depression": "depression", "ptsd": "ptsd", "panic": "panic", "gad": "gad", "ocd": "ocd",
             "sad": "social-anxiety", "psychosis": "psychosis", "suicide": "suicidality"}
KINDS = {
    "msd": ("mean_arm1", "sd_arm1", "n_arm1", "mean_arm2", "sd_arm2", "n_arm2"),
    "change": ("mean_change_arm1", "sd_change_arm1", "n_change_arm1", "mean_change_arm2", "sd_change_arm2",
               "n_change_arm2"),
    "binary": ("event_arm1", "totaln_arm1", "event_arm2", "totaln_arm2"),
}


def _num(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 9)  # type: ignore[arg-type]


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip()


def _identity(row: dict) -> tuple:
    instrument = _text(row.get("instrument")) or _text(row.get("outcome_type"))
    return (row["study"].strip(), _text(row["condition_arm1"]), _text(row["condition_arm2"]),
            _text(row.get("multi_arm1")), _text(row.get("multi_arm2")), instrument)


def _candidates(row: dict) -> set[tuple]:
    """The number tuples an original row may come back with (one per complete data kind, or |g| and SE)."""
    found = set()
    for kind, columns in KINDS.items():
        values = tuple(_num(row.get(c)) for c in columns)
        if None not in values:
            found.add((kind, values))
    for g, se in ((".g", ".g_se"), ("precalc_g", "precalc_g_se")):
        if _num(row.get(g)) is not None and _num(row.get(se)) is not None:
            found.add(("precalc", (abs(_num(row[g])), _num(row[se]))))
    return found


def _exported_numbers(row: dict) -> tuple:
    kind = {"msd": "msd", "change": "change", "binary": "binary"}.get(row["kind"], "precalc")
    if kind == "precalc":
        return kind, (abs(_num(row["precalc_g"])), _num(row["precalc_g_se"]))
    return kind, tuple(_num(row[c]) for c in KINDS[kind])


@pytest.mark.parametrize("name", sorted(DATABASES))
def test_import_then_export_gives_the_same_comparisons(name: str, tmp_path: Path) -> None:
    vocabulary = load_vocabulary()
    frame = read_metapsy_csv(FIXTURES / f"metapsy-{name}-psyctr.csv.gz")
    result = import_metapsy(frame, DATABASES[name], vocabulary, database=name)
    write_trials(result.trials, tmp_path)
    trials = load_studies(tmp_path, vocabulary)
    assert len(trials) == len(result.trials)

    skipped = {p.line for p in result.skipped}
    assert result.rows_converted + len(skipped) == len(frame)
    originals = [r for r in frame.to_dict("records") if r["source_line"] not in skipped]

    exported = export_metapsy(trials)
    exported["kind"] = [_kind_of(row) for row in exported.to_dict("records")]
    assert len(exported) == len(originals)
    assert Counter(map(_identity, exported.to_dict("records"))) == Counter(map(_identity, originals))

    candidates: dict[tuple, list[set[tuple]]] = {}
    for row in originals:
        candidates.setdefault(_identity(row), []).append(_candidates(row))
    for row in exported.to_dict("records"):
        pool = candidates[_identity(row)]
        numbers = _exported_numbers(row)
        match = next((i for i, options in enumerate(pool) if numbers in options), None)
        assert match is not None, (row["study"], numbers, pool)
        pool.pop(match)


def _kind_of(row: dict) -> str:
    if _num(row.get("precalc_g")) is not None:
        return "precalc"
    if _num(row.get("mean_arm1")) is not None:
        return "msd"
    if _num(row.get("mean_change_arm1")) is not None:
        return "change"
    return "binary"


@pytest.mark.parametrize("name", ["ptsd", "suicide", "psychosis", "gad"])
def test_published_form_reads_like_the_plain_csv(name: str) -> None:
    published = read_metapsy_csv(FIXTURES / f"metapsy-{name}-psyctr.original.csv.gz")
    plain = read_metapsy_csv(FIXTURES / f"metapsy-{name}-psyctr.csv.gz")
    assert published.attrs["problems"] == plain.attrs["problems"] == []
    columns = [c for c in plain.columns if c not in ("source_file", "source_line")]
    assert list(published.columns[: len(columns)]) == columns
    for column in columns:
        left, right = published[column].tolist(), plain[column].tolist()
        assert [_num(v) if not isinstance(v, str) else v.strip() for v in left] == \
               [_num(v) if not isinstance(v, str) else v.strip() for v in right], column


def test_published_rows_keep_their_physical_lines() -> None:
    frame = read_metapsy_csv(FIXTURES / "metapsy-ptsd-psyctr.original.csv.gz")
    lines = frame["source_line"].tolist()
    assert lines[0] == 2 and lines == sorted(lines)
    assert lines[-1] > len(frame) + 1  # quoted fields span several lines
