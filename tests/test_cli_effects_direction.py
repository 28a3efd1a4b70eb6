"""``metapsych effects FILE.csv`` on a Metapsy database gives each row the direction ``metapsych import`` gives
it: where the database's ``.g`` is oriented (positive = arm 1 better), an instrument the vocabulary does not
know takes its direction from .g, and a precalc_g with the opposite sign of .g is turned round. Found on the
shipped databases: sad (PSSEQ, BAT), ocd (three precalc_g rows) and depression (Rohde, 2014b; Kivi, 2014)
came out with the opposite sign on the two routes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metapsych.cli import app

runner = CliRunner()
HEADER = ("study,condition_arm1,condition_arm2,multi_arm1,multi_arm2,outcome_type,instrument,time,time_weeks,"
          "rating,mean_arm1,mean_arm2,sd_arm1,sd_arm2,n_arm1,n_arm2,precalc_g,precalc_g_se,.g,.g_se\n")
# .g oriented: Alpha and Beta have lower means in arm 1 (symptom scales) and a positive .g
ORIENTED = (
    '"Alpha, 2019",cbt,wl,NA,NA,msd,bdi-2,post,8,self-report,10,15,5,5,40,40,NA,NA,0.98,0.23\n'
    '"Beta, 2020",cbt,cau,NA,NA,msd,phq-9,post,12,self-report,8,12,4,4,30,30,NA,NA,0.99,0.27\n'
    '"Gamma, 2021",cbt,wl,NA,NA,msd,psseq,post,10,self-report,20,15,6,6,35,35,NA,NA,0.82,0.25\n'
    '"Delta, 2018",cbt,wl,NA,NA,other stat,voci,post,3,self-report,NA,NA,NA,NA,NA,NA,-1.66,0.48,1.66,0.48\n'
)


def _effects(args: list[str]) -> dict[str, dict]:
    result = runner.invoke(app, ["effects", *args, "--json"])
    assert result.exit_code == 0, result.output
    return {row["study"]: row for row in json.loads(result.stdout)}


def test_csv_route_orients_rows_as_the_importer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "db.csv"
    db.write_text(HEADER + ORIENTED, encoding="utf-8")
    from_csv = _effects([str(db)])
    assert from_csv["Gamma, 2021"]["yi"] > 0  # psseq is not in the vocabulary: higher is better, from .g
    assert from_csv["Gamma, 2021"]["lower_is_better"] is False
    assert from_csv["Delta, 2018"]["yi"] == 1.66  # precalc_g -1.66 beside .g 1.66
    assert from_csv["Alpha, 2019"]["lower_is_better"] is True and from_csv["Alpha, 2019"]["yi"] > 0

    imported = runner.invoke(app, ["import", "metapsy", str(db), "--condition", "depression",
                                   "--out", str(tmp_path / "studies")])
    assert imported.exit_code == 0, imported.output
    monkeypatch.chdir(tmp_path)
    from_trials = _effects([])
    assert sorted(from_trials) == sorted(from_csv)
    for study, row in from_csv.items():
        assert from_trials[study]["yi"] == pytest.approx(row["yi"], rel=1e-12), study


def test_turned_precalc_g_is_noted_with_its_line(tmp_path: Path) -> None:
    db = tmp_path / "db.csv"
    db.write_text(HEADER + ORIENTED, encoding="utf-8")
    result = runner.invoke(app, ["effects", str(db)])
    assert result.exit_code == 0, result.output
    assert f"note: {db}: precalc_g turned round on line 5, as `metapsych import` orients it" in result.stderr


def test_raw_g_database_is_left_as_it_is(tmp_path: Path) -> None:
    """metapsyTools' own convention (.g = sign of mean1 - mean2): directions come from the vocabulary, and
    Delta keeps its precalc_g, which has the sign of the g the importer takes (.g, raw, turned round for a
    lower-is-better scale)."""
    raw = ORIENTED.replace(",0.98,0.23", ",-0.98,0.23").replace(",0.99,0.27", ",-0.99,0.27")
    db = tmp_path / "db.csv"
    db.write_text(HEADER + raw, encoding="utf-8")
    result = runner.invoke(app, ["effects", str(db), "--json"])
    assert result.exit_code == 0, result.output
    assert "note:" not in result.stderr
    rows = {row["study"]: row for row in json.loads(result.stdout)}
    assert rows["Gamma, 2021"]["yi"] < 0  # unknown instrument: a symptom scale by default
    assert rows["Delta, 2018"]["yi"] == -1.66
    assert "lower_is_better" not in rows["Alpha, 2019"]


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "metapsy"


@pytest.mark.parametrize("name", ["depression", "ocd", "ptsd", "sad"])
def test_rows_of_oriented_databases_have_the_sign_of_their_g(name: str) -> None:
    """Every row with an effect and a non-zero .g has .g's sign (before: Rohde 2014b and Kivi 2014 in
    depression, three precalc_g rows in ocd, PSSEQ and BAT in sad had the opposite one)."""
    rows = json.loads(runner.invoke(app, ["effects", str(FIXTURES / f"metapsy-{name}-psyctr.csv.gz"),
                                          "--json"]).stdout)
    signed = [(row["yi"], row[".g"]) for row in rows
              if row.get("yi") is not None and row.get(".g") is not None and abs(row[".g"]) > 1e-9]
    assert len(signed) > 50
    assert [(y, g) for y, g in signed if (y > 0) != (g > 0)] == []


def test_precalc_g_without_g_is_oriented_on_both_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A precalc_g in a file without .g (as ``export_metapsy`` writes one) is taken as oriented by import too
    (it was turned round for a lower-is-better instrument, so an export did not import back)."""
    db = tmp_path / "db.csv"
    db.write_text("study,condition_arm1,condition_arm2,outcome_type,instrument,time,precalc_g,precalc_g_se\n"
                  '"Delta, 2018",cbt,wl,other stat,bdi-2,post,0.5,0.2\n', encoding="utf-8")
    assert _effects([str(db)])["Delta, 2018"]["yi"] == 0.5
    imported = runner.invoke(app, ["import", "metapsy", str(db), "--condition", "depression",
                                   "--out", str(tmp_path / "studies")])
    assert imported.exit_code == 0, imported.output
    monkeypatch.chdir(tmp_path)
    assert _effects([])["Delta, 2018"]["yi"] == 0.5


def _both_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, header: str = HEADER) -> tuple[dict, dict]:
    """(study -> yi) of ``effects FILE.csv`` and of ``import metapsy`` followed by ``effects``."""
    db = tmp_path / "db.csv"
    db.write_text(header + body, encoding="utf-8")
    from_csv = {study: row["yi"] for study, row in _effects([str(db)]).items()}
    imported = runner.invoke(app, ["import", "metapsy", str(db), "--condition", "depression",
                                   "--out", str(tmp_path / "studies")])
    assert imported.exit_code == 0, imported.output
    monkeypatch.chdir(tmp_path)
    return from_csv, {study: row["yi"] for study, row in _effects([]).items()}


def test_a_g_without_se_leaves_precalc_g_as_import_takes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The importer takes .g only with its SE; without it, precalc_g as it is (found in review, helper H26)."""
    body = ORIENTED + '"Zeta, 2017",cbt,wl,NA,NA,other stat,voci,post,3,self-report,NA,NA,NA,NA,NA,NA,-0.6,0.2,0.6,NA\n'
    from_csv, from_trials = _both_routes(tmp_path, monkeypatch, body)
    assert from_csv["Zeta, 2017"] == from_trials["Zeta, 2017"] == -0.6


def test_an_explicit_direction_is_honoured_by_both_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    header = HEADER.rstrip("\n") + ",lower_is_better\n"
    body = "".join(line + (",FALSE\n" if line.startswith('"Beta') else ",NA\n") for line in ORIENTED.splitlines())
    from_csv, from_trials = _both_routes(tmp_path, monkeypatch, body, header)
    assert from_csv["Beta, 2020"] < 0  # phq-9 scored as if higher were better, as the row says
    assert from_csv == pytest.approx(from_trials, rel=1e-12)


def test_precalc_g_of_a_raw_database_is_oriented_as_import_does(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """In a database whose .g is raw, precalc_g is raw too: a bdi-2 precalc_g of 0.6 favours the control."""
    raw = (ORIENTED.replace(",0.98,0.23", ",-0.98,0.23").replace(",0.99,0.27", ",-0.99,0.27")
           + '"Eta, 2016",cbt,wl,NA,NA,other stat,bdi-2,post,3,self-report,NA,NA,NA,NA,NA,NA,0.6,0.2,NA,NA\n')
    from_csv, from_trials = _both_routes(tmp_path, monkeypatch, raw)
    assert from_csv["Eta, 2016"] == from_trials["Eta, 2016"] == -0.6
    assert from_csv == pytest.approx(from_trials, rel=1e-12)
