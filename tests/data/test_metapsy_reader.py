"""The Metapsy CSV reader on what real files contain: BOM, CRLF, ';' with decimal comma, NA and NR, Inf,
mixed decimal marks, quoted fields over two lines, tab-separated and plain CSV, unreadable numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from metapsych.data.metapsy import parse_number, read_metapsy_csv
from metapsych.errors import DataError

QUIRKS = Path(__file__).resolve().parent.parent / "fixtures" / "metapsy" / "quirks.csv"


def test_published_form_with_quirks() -> None:
    frame = read_metapsy_csv(QUIRKS)
    assert list(frame.columns[:3]) == ["study", "condition_arm1", "condition_arm2"]  # index column dropped
    assert frame["source_line"].tolist() == [2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert frame["mean_arm1"].iloc[0] == 12.5 and frame["mean_arm1"].iloc[2] == 9.0
    assert math.isnan(frame["mean_arm1"].iloc[6])  # NR
    assert frame[".g"].iloc[8] == math.inf
    assert pd.isna(frame["multi_arm1"].iloc[0])
    assert frame["full_ref"].iloc[1] == "Beta B.\nA reference over two lines."
    (problem,) = frame.attrs["problems"]
    assert (problem.line, problem.field) == (12, "mean_arm1")
    with pytest.raises(DataError) as info:
        read_metapsy_csv(QUIRKS, strict=True)
    assert f"{QUIRKS}:12: mean_arm1: cannot read '12,5,3' as a number" in str(info.value)


@pytest.mark.parametrize("text", [
    "study,mean_arm1,n_arm1\nA,\"1,5\",10\nB,2.5,NA\n",
    "study\tmean_arm1\tn_arm1\nA\t1,5\t10\nB\t2.5\t\n",
    "study;mean_arm1;n_arm1\r\nA;1,5;10\r\nB;2.5;NR\r\n",
])
def test_plain_tab_and_semicolon_forms(tmp_path: Path, text: str) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text)
    frame = read_metapsy_csv(path)
    assert frame["mean_arm1"].tolist() == [1.5, 2.5]
    assert frame["n_arm1"].iloc[0] == 10 and math.isnan(frame["n_arm1"].iloc[1])
    assert frame["source_line"].tolist() == [2, 3]


def test_ragged_rows_and_empty_files_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("study;mean_arm1\nA;1;2\n")
    assert read_metapsy_csv(path).attrs["problems"][0].line == 2
    path.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_metapsy_csv(path)


@pytest.mark.parametrize("text, value", [("1,5", 1.5), (" 2.25 ", 2.25), ("-3", -3.0), ("1e-3", 0.001),
                                          ("NA", None), ("NR", None), ("", None), ("-Inf", -math.inf)])
def test_parse_number(text: str, value: float | None) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["1.234,5", "12,5,3", "abc", "1..2"])
def test_parse_number_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_number(text)
