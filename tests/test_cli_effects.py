"""``metapsych effects`` through the CLI: the JSON/table/CSV contract, measures, and exit code 2 on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from metapsych.cli import app
from metapsych.effects import continuous, convert

runner = CliRunner()
TRIAL = Path(__file__).resolve().parent / "fixtures" / "escalc" / "studies" / "smith-2019.yaml"
HEADER = (
    "study;instrument;mean_arm1;sd_arm1;n_arm1;mean_arm2;sd_arm2;n_arm2;"
    "event_arm1;totaln_arm1;event_arm2;totaln_arm2;precalc_g;precalc_g_se\n"
)


def _csv(tmp_path: Path, body: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


@pytest.fixture()
def mixed(tmp_path: Path) -> Path:
    return _csv(tmp_path, (
        "A, 2019;bdi-ii;14,2;8,1;55;22,0;9,0;52;NA;NA;NA;NA;NA;NA\n"
        "B, 2020;response;NA;NA;NA;NA;NA;NA;30;60;12;58;NA;NA\n"
        "C, 2021;phq-9;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;0,41;0,2\n"
        "D, 2022;phq-9;NA;NA;NA;NA;NA;NA;0;40;0;38;NA;NA\n"
        "E, 2023;phq-9;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA\n"
    ))


def test_json_rows_carry_yi_vi_measure_formula(mixed: Path) -> None:
    res = runner.invoke(app, ["effects", str(mixed), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["formula"] for r in rows] == ["smd_from_means", "smd_from_logor", "smd_precalc_se", None, None]
    assert all(r["measure"] == "g" for r in rows)
    ref = continuous.smd(22.0, 9.0, 52, 14.2, 8.1, 55)
    assert rows[0]["yi"] == pytest.approx(float(ref.yi), rel=1e-12)
    assert rows[0]["vi"] == pytest.approx(float(ref.vi), rel=1e-12)
    assert rows[0]["source_line"] == 2 and rows[0]["study"] == "A, 2019"
    assert rows[2]["yi"] == 0.41 and rows[2]["vi"] == pytest.approx(0.04)
    assert rows[3]["yi"] is None and rows[3]["why_missing"].startswith("double zero")
    assert rows[4]["why_missing"].startswith("no effect-size data")


@pytest.mark.parametrize("measure, formula", [("or", "logor_from_events"), ("rr", "logrr_from_events"),
                                              ("rd", "rd_from_events"), ("md", "md_from_means")])
def test_other_measures(mixed: Path, measure: str, formula: str) -> None:
    res = runner.invoke(app, ["effects", str(mixed), "--measure", measure, "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert formula in [r["formula"] for r in rows]
    assert all(r["measure"] == measure for r in rows)


def test_table_and_out_csv(mixed: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["effects", str(mixed)])
    assert res.exit_code == 0
    assert "smd_from_means" in res.stdout and "5 rows, 3 with an effect size (g)" in res.stdout
    out = tmp_path / "effects" / "table.csv"
    res = runner.invoke(app, ["effects", str(mixed), "--out", str(out)])
    assert res.exit_code == 0 and out.is_file()
    table = pd.read_csv(out)
    assert {"yi", "vi", "sei", "measure", "formula", "why_missing", "nnt"} <= set(table.columns)
    assert len(table) == 5


def test_bad_numbers_exit_2_naming_file_line_field(tmp_path: Path) -> None:
    path = _csv(tmp_path, (
        "A;bdi-ii;14;0;55;22;9;1;NA;NA;NA;NA;NA;NA\n"
        "B;response;NA;NA;NA;NA;NA;NA;70;60;12;58;NA;NA\n"
        "C;phq-9;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;0,4;-0,2\n"
    ), name="bad.csv")
    res = runner.invoke(app, ["effects", str(path)])
    assert res.exit_code == 2
    err = res.stderr
    assert f"{path}:2: sd_arm1: must be positive" in err
    assert f"{path}:2: n_arm2: sample size below 2" in err
    assert f"{path}:3: event_arm1: 70 events out of 60" in err
    assert f"{path}:4: precalc_g_se: must be positive" in err
    assert "Traceback" not in res.output


def test_bad_p_value_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("study,n_arm1,n_arm2,p_value,stat_favours\nA,20,20,1.5,arm1\n", encoding="utf-8")
    res = runner.invoke(app, ["effects", str(path)])
    assert res.exit_code == 2 and f"{path}:2: p_value: p-value outside (0, 1)" in res.stderr


def test_usage_errors_exit_2(mixed: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["effects", str(mixed), "--measure", "smd"])
    assert res.exit_code == 2 and "unknown measure" in res.stderr
    res = runner.invoke(app, ["effects", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and "no such file" in res.stderr


def test_without_file_and_without_studies_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["effects"])
    assert res.exit_code == 2 and "studies" in res.stderr


def test_studies_folder_every_kind_of_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "studies").mkdir()
    shutil.copy(TRIAL, tmp_path / "studies" / TRIAL.name)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["effects", "--json"])
    assert res.exit_code == 0, res.output
    rows = {(r["arm1"], r["arm2"], r["instrument"]): r for r in json.loads(res.stdout)}
    expected = {
        ("cbt", "wl", "bdi-ii"): ("smd_from_means", continuous.smd(22.0, 9.0, 52, 14.2, 8.1, 55)),
        ("grp", "wl", "bdi-ii"): ("smd_from_means", continuous.smd(22.0, 9.0, 52, 15.0, 8.4, 60 / 1.35)),
        ("cbt", "grp", "bdi-ii"): ("smd_from_means", continuous.smd(15.0, 8.4, 60 / 1.35, 14.2, 8.1, 55)),
        ("cbt", "wl", "hdrs-17"): ("smd_from_change", continuous.smd(-3.0, 6.0, 52, -9.1, 6.2, 55)),
        ("cbt", "wl", "my-scale"): ("smd_from_t", convert.smd_from_t(-2.31, 55, 52)),
    }
    assert len(rows) == 7
    for key, (formula, ref) in expected.items():
        assert rows[key]["formula"] == formula
        assert rows[key]["yi"] == pytest.approx(float(ref.yi), rel=1e-12)
        assert rows[key]["vi"] == pytest.approx(float(ref.vi), rel=1e-12)
    assert rows[("grp", "wl", "bdi-ii")]["design_effect"] == pytest.approx(1.35)
    assert rows[("cbt", "wl", "phq-9")]["formula"] == "smd_precalc_se"
    assert rows[("cbt", "wl", "phq-9")]["yi"] == 0.45
    response = rows[("cbt", "wl", "response")]
    lor = convert.logor_to_smd(np.log(30 * 46 / (30 * 12)), 1 / 30 + 1 / 30 + 1 / 12 + 1 / 46)
    assert response["formula"] == "smd_from_logor" and response["yi"] == pytest.approx(float(lor.yi), rel=1e-12)
