"""`metapsych import metapsy`: real-file quirks (BOM, CRLF, ';' and decimal comma, NR, Inf, a quoted field over
two lines, mixed decimal marks), multi-arm trials sharing a control, arm-switched and exact duplicates, and
every row that cannot be converted listed with its line and reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from metapsych.cli import app
from metapsych.data.load import load_studies

ROOT = Path(__file__).resolve().parent.parent
QUIRKS = ROOT / "tests" / "fixtures" / "metapsy" / "quirks.csv"
runner = CliRunner()


def run_import(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["import", "metapsy", *args])


def test_quirky_file_is_imported_and_every_unconverted_row_listed(tmp_path: Path) -> None:
    result = run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "3 trial file(s) written" in result.output and "from 5 row(s)" in result.output
    out = result.output
    assert f"{QUIRKS}:6: condition_arm1: row not converted: arm-switched duplicate of line 3" in out
    assert f"{QUIRKS}:7: (row): row not converted: exact duplicate of line 2" in out
    assert f"{QUIRKS}:8: condition_arm1: row not converted: the arm has no condition code" in out
    assert f"{QUIRKS}:9: (row): row not converted: no usable numbers" in out
    assert f"{QUIRKS}:12: mean_arm1: row not converted: cannot read '12,5,3' as a number" in out
    assert f"{QUIRKS}:13: time: row not converted: unknown time point 'week 3'" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "depression-alpha-2020.yaml", "depression-beta-2019.yaml", "depression-delta-2021.yaml"]
    assert len(load_studies(tmp_path)) == 3


def test_multi_arm_trial_shares_its_control(tmp_path: Path) -> None:
    run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path))
    beta = yaml.safe_load((tmp_path / "depression-beta-2019.yaml").read_text())
    assert [a["id"] for a in beta["arms"]] == ["f2f", "cau", "internet"]
    assert [a["approach"] for a in beta["arms"]] == ["cbt", "care-as-usual", "ipt"]
    assert beta["comparisons"] == [["f2f", "cau"], ["internet", "cau"]]
    (outcome,) = beta["outcomes"]
    assert outcome["results"]["internet"] == {"mean": 9, "sd": 4.2, "n": 31}  # '9.0' in a decimal-comma file
    assert "two lines" in beta["citation"]
    assert "format" not in beta["arms"][1]  # the switched duplicate row did not leak its format into the control


def test_unusable_means_fall_back_to_the_database_g(tmp_path: Path) -> None:
    run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path))
    delta = yaml.safe_load((tmp_path / "depression-delta-2021.yaml").read_text())
    post, follow_up = delta["outcomes"]
    assert post["precomputed"] == {"arms": ["ba", "waitlist"], "g": 1.1, "se": 0.3, "source": "metapsy .g"}
    assert "SD of arm 1 is 0" in post["note"]
    assert follow_up["timepoint"] == {"label": "follow-up", "weeks": 26}
    assert follow_up["results"]["ba"] == {"events": 15, "n": 25}
    assert follow_up["lower_is_better"] is False
    assert delta["arms"][0]["original_code"] == "bat"


def test_existing_files_are_not_overwritten_without_flag(tmp_path: Path) -> None:
    assert run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path)).exit_code == 0
    target = tmp_path / "depression-alpha-2020.yaml"
    target.write_text("edited")
    result = run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "already exist" in result.output and "--overwrite" in result.output
    assert target.read_text() == "edited"
    assert run_import(str(QUIRKS), "--condition", "depression", "--out", str(tmp_path), "--overwrite").exit_code == 0
    assert target.read_text().startswith("# Imported from quirks.csv")


def test_argument_errors_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_import(str(QUIRKS), "--condition", "depresion", "--out", str(out))
    assert result.exit_code == 2 and "did you mean 'depression'?" in result.output
    result = run_import(str(QUIRKS), "--out", str(out))
    assert result.exit_code == 2 and "--condition" in result.output
    assert run_import(str(tmp_path / "missing.csv"), "--out", str(out)).exit_code == 2
    header_only = tmp_path / "metapsy-ptsd.csv"
    header_only.write_text("study;arm\nA;B\n")
    result = run_import(str(header_only), "--out", str(out))
    assert result.exit_code == 2
    assert f"{header_only}:1: condition_arm1: required column is missing" in result.output
    assert not out.exists()


def test_condition_is_taken_from_the_file_name(tmp_path: Path) -> None:
    source = tmp_path / "metapsy-sad-psyctr.csv"
    source.write_bytes(QUIRKS.read_bytes())
    result = run_import(str(source), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "social-anxiety-alpha-2020.yaml").exists()


HEADER = "study;condition_arm1;condition_arm2;multi_arm1;multi_arm2;instrument;time;time_weeks;mean_arm1;sd_arm1;" \
         "n_arm1;mean_arm2;sd_arm2;n_arm2;event_arm1;totaln_arm1;event_arm2;totaln_arm2;.g;.g_se;rob;format;year\n"
cells = st.sampled_from(["", "NA", "NR", "Inf", "-1", "0", "1", "2,5", "3.5", "40", "cbt", "wl", "post", "fu",
                         "x;y", '"q"', "A, 2020", "B, 2021", "1e400", "ind"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=25), max_size=6), raw=st.binary(max_size=200))
def test_random_metapsy_files_never_crash(tmp_path: Path, rows: list, raw: bytes) -> None:
    source = tmp_path / "metapsy-depression.csv"
    for content in (HEADER + "\n".join(";".join(r) for r in rows), raw):
        source.write_bytes(content.encode() if isinstance(content, str) else content)
        out = tmp_path / "out"
        shutil.rmtree(out, ignore_errors=True)
        result = run_import(str(source), "--out", str(out))
        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output and "internal error" not in result.output
        if result.exit_code == 0 and out.exists():
            assert len(load_studies(out)) == len(list(out.iterdir()))


def test_rows_that_would_not_validate_are_listed_not_written(tmp_path: Path) -> None:
    source = tmp_path / "metapsy-ocd.csv"
    source.write_text(
        "study,condition_arm1,condition_arm2,multi_arm1,multi_arm2,time_weeks,rand_arm1,"
        "mean_arm1,sd_arm1,n_arm1,mean_arm2,sd_arm2,n_arm2\n"
        "A 2020,cbt,cbt,,,8,40,10,5,30,12,5,30\n"
        "B 2021,cbt,wl,,,-4,1,10,5,30,12,5,30\n")
    result = run_import(str(source), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert f"{source}:2: multi_arm2: row not converted: both arms have the same code" in result.output
    trial = yaml.safe_load((tmp_path / "out" / "ocd-b-2021.yaml").read_text())
    assert trial["outcomes"][0]["timepoint"] == {"label": "post"}
    assert "randomized" not in trial["arms"][0]


def test_a_file_with_no_convertible_row_is_an_error(tmp_path: Path) -> None:
    """Every row rejected: exit 2 with each row's reason, and no output folder (it said '0 trial file(s)
    written' and exited 0)."""
    source = tmp_path / "metapsy-ocd.csv"
    source.write_text("study,condition_arm1,condition_arm2,mean_arm1,sd_arm1,n_arm1,mean_arm2,sd_arm2,n_arm2\n"
                      "A 2020,cbt,cbt,10,5,30,12,5,30\n")
    result = run_import(str(source), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert f"{source}:2: multi_arm2: row not converted: both arms have the same code" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cluster_columns_go_to_the_arms_and_table_columns_are_not_moderators(tmp_path: Path) -> None:
    """icc_arm1/cluster_size_arm1 became moderators, which a trial may no longer name like table columns
    (the import then failed); they are the arms' ICC and cluster size, and Country is the trial's own field."""
    source = tmp_path / "metapsy-depression.csv"
    source.write_text("study,condition_arm1,condition_arm2,mean_arm1,sd_arm1,n_arm1,mean_arm2,sd_arm2,n_arm2,"
                      "icc_arm1,cluster_size_arm1,Country,rob_score,setting\n"
                      "A 2020,cbt,wl,10,5,30,12,5,30,0.05,10,UK,3,clinic\n")
    result = run_import(str(source), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    trial = yaml.safe_load((tmp_path / "out" / "depression-a-2020.yaml").read_text())
    assert trial["arms"][0]["icc"] == 0.05 and trial["arms"][0]["cluster_size"] == 10
    assert "icc" not in trial["arms"][1] and trial["moderators"] == {"setting": "clinic"}


def test_an_icc_without_its_cluster_size_is_noted(tmp_path: Path) -> None:
    """Half of a design effect was dropped without a word."""
    source = tmp_path / "metapsy-depression.csv"
    source.write_text("study,condition_arm1,condition_arm2,mean_arm1,sd_arm1,n_arm1,mean_arm2,sd_arm2,n_arm2,"
                      "icc_arm2,cluster_size_arm2\nA 2020,cbt,wl,10,5,30,12,5,30,0.05,\n")
    assert run_import(str(source), "--out", str(tmp_path / "out")).exit_code == 0
    trial = yaml.safe_load((tmp_path / "out" / "depression-a-2020.yaml").read_text())
    assert "icc" not in trial["arms"][1]
    assert any("icc_arm2 0.05 and cluster_size_arm2 None not used" in note for note in trial["notes"])
