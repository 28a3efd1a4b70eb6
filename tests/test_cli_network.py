"""``metapsych network`` through the CLI: the JSON contract, tables, Metapsy rows and input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metapsych.cli import app
from tests.network.fixtures import FIXTURES, assert_close, oracle

runner = CliRunner()
CONTRACT = {"reference", "tau2", "Q_total", "Q_within", "Q_between", "estimates", "league", "p_scores"}


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["network", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_contract_matches_the_oracle() -> None:
    code, out, _ = _invoke(str(FIXTURES / "senn2013.csv"), "--reference", "placebo", "--small-values", "good",
                           "--json")
    assert code == 0
    payload = json.loads(out)
    assert CONTRACT <= set(payload)
    assert {"sucra", "split", "components", "designs", "graph"} <= set(payload)
    expected = oracle("senn2013")["random"]
    assert_close(payload["tau2"], expected["tau2"], 1e-6)
    for treat, est in expected["estimates"].items():
        assert set(payload["estimates"][treat]) >= {"estimate", "se", "ci_lower", "ci_upper"}
        assert_close(payload["estimates"][treat]["estimate"], est["estimate"], 1e-6)
    assert_close(payload["p_scores"]["metformin"], expected["p_scores"]["metformin"], 1e-6)


def test_common_model_and_netmeta_column_names() -> None:
    code, out, _ = _invoke(str(FIXTURES / "therapyformats-raw.csv"), "--reference", "cau", "--common",
                           "--small-values", "good", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["tau2"] == 0.0 and payload["model"] == "common"
    assert round(payload["estimates"]["ind"]["estimate"], 4) == -0.6403


def test_tables_state_the_multi_arm_handling() -> None:
    code, out, _ = _invoke(str(FIXTURES / "therapyformats-raw.csv"), "--reference", "cau", "--common")
    assert code == 0
    text = " ".join(out.split())
    assert "multi-arm studies (1): estimates use netmeta" in text
    assert "Q within and between designs use netmeta decomp.design / nma.krahn" in text


def test_tables_without_json() -> None:
    code, out, _ = _invoke(str(FIXTURES / "star.csv"), "--reference", "care-as-usual")
    assert code == 0
    for text in ("Versus care-as-usual", "P-score", "between designs", "League table", "no closed loop"):
        assert text in out


def test_disconnected_network_prints_each_part() -> None:
    code, out, _ = _invoke(str(FIXTURES / "disconnected.csv"), "--reference", "A")
    assert code == 0
    assert "Separate part: D, E" in out


def test_metapsy_rows(tmp_path: Path) -> None:
    path = tmp_path / "metapsy.csv"
    path.write_text(
        "study;condition_arm1;condition_arm2;.g;.g_se\n"
        "Smith, 2019;cbt;wl;0,8;0,2\nLee, 2020;ipt;wl;0,6;0,25\nKim, 2021;cbt;ipt;0,1;0,2\n"
        "Ode, 2018;cbt;wl;0,7;0,3\n"
    )
    code, out, _ = _invoke(str(path), "--reference", "wl", "--json")
    assert code == 0, out
    payload = json.loads(out)
    assert payload["estimates"]["cbt"]["estimate"] > 0
    assert payload["n_studies"] == 4


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("study,treat1,treat2,yi\ns1,a,b,0.1\n", ":1: vi: column missing"),
        ("study,treat1,treat2,yi,vi\ns1,a,b,0.1,0.1\ns2,a,b,x,0.1\n", ":3: yi: 'x' is not a number"),
        ("study,treat1,treat2,yi,vi\ns1,a,b,0.1,0.1\ns2,a,b,0.2,-1\n", ":3: vi: -1 is not positive"),
        ("study,treat1,treat2,yi,vi\ns1,a,b,0.1,0.1\ns1,a,c,0.2,0.1\n", ":3: treat2: study 's1' has 3 arms"),
        ("study,treat1,treat2,yi,vi\ns1,a,b,0.1,0.1\ns1,a,c,0.2,0.1\ns1,b,c,0.1,0.6\n", ":4: vi: multi-arm"),
        ("study,treat1,treat2,yi,vi\ns1,a,b,0.1,0.1\ns1,a,c,0.2,0.1\ns1,b,c,0.5,0.2\n", ":2: yi: multi-arm"),
    ],
)
def test_bad_input_exits_2_with_file_line_column(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = _invoke(str(path), "--reference", "a")
    assert code == 2
    assert expected in err
    assert "Traceback" not in out + err


def test_unknown_reference_and_bad_options(tmp_path: Path) -> None:
    path = tmp_path / "star.csv"
    shutil.copy(FIXTURES / "star.csv", path)
    code, _, err = _invoke(str(path), "--reference", "placebo")
    assert code == 2 and "placebo" in err and "not a treatment" in err
    code, _, err = _invoke(str(path), "--reference", "cbt", "--small-values", "low")
    assert code == 2 and "--small-values" in err
    code, _, err = _invoke(str(tmp_path / "missing.csv"), "--reference", "cbt")
    assert code == 2


def test_metapsy_multiarm_trial_against_a_shared_control_is_completed(tmp_path: Path) -> None:
    path = tmp_path / "metapsy.csv"
    path.write_text(
        "study,condition_arm1,condition_arm2,.g,.g_se,n_arm1,n_arm2\n"
        "Smith 2019,cbt,wl,0.8,0.2,50,50\nSmith 2019,ipt,wl,0.6,0.21,45,50\nLee 2020,ipt,wl,0.5,0.25,30,30\n"
        "Kim 2021,cbt,ipt,0.1,0.2,40,40\n"
    )
    code, out, _ = _invoke(str(path), "--reference", "wl", "--json")
    assert code == 0, out
    payload = json.loads(out)
    assert payload["multi_arm_studies"] == ["Smith 2019"]
    assert any("shared arm 'wl'" in note for note in payload["notes"])
    assert {n["treatment"]: n["n_participants"] for n in payload["graph"]["nodes"]}["wl"] == 80


def test_implausible_numbers_are_located_errors(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("study,treat1,treat2,yi,vi\na,x,y,1e308,0.1\nb,y,z,0.2,1e-300\nc,x,z,0.1,0.1\n")
    result = runner.invoke(app, ["network", str(path), "--reference", "x"])
    text = " ".join((result.stdout + result.stderr).split())
    assert result.exit_code == 2 and "big.csv:2: yi: 1e308 is implausibly large" in text
    assert "big.csv:3: vi: 1e-300 is implausibly small" in text


def test_funnel_order_adds_the_comparison_adjusted_egger_test() -> None:
    """Harrer et al. ch. 12.2 order (wlc, cau, ind, grp, tel, ush, gsh): netmeta's metabias gives p = 0.4011."""
    path = str(FIXTURES / "therapyformats.csv")
    result = runner.invoke(app, ["network", path, "--reference", "cau", "--common", "--json",
                                 "--funnel-order", "wlc,cau,ind,grp,tel,ush,gsh"])
    assert result.exit_code == 0, result.output
    funnel = json.loads(result.stdout)["funnel"]
    assert funnel["order"][0] == "wlc" and round(funnel["egger_p"], 4) == 0.4011
    bad = runner.invoke(app, ["network", path, "--reference", "cau", "--funnel-order", "wlc,cau"])
    assert bad.exit_code == 2 and "--funnel-order" in bad.output


def test_variances_spanning_more_than_eight_orders_are_refused(tmp_path: Path) -> None:
    """The Laplacian's conditioning costs eps x the variance ratio: at vi = 1e-17 beside 0.06 the common-effect
    estimate of cau vs cbt was +1.0 instead of -0.5. 1e-8 (a ratio of 6e6) still agrees with least squares."""
    rows = ["study,treat1,treat2,yi,vi", "s1,cbt,cau,0.5,0.04", "s2,cbt,wl,0.8,0.05", "s3,ipt,cau,0.4,0.04",
            "s4,ipt,wl,0.7,0.06", "s5,cbt,ipt,0.1,{vi}"]
    path = tmp_path / "m.csv"
    path.write_text("\n".join(rows).format(vi="1e-17") + "\n")
    result = CliRunner().invoke(app, ["network", str(path), "--common"])
    assert result.exit_code == 2 and "m.csv:6: vi: sampling variance 1e-17 is" in result.stderr, result.output
    path.write_text("\n".join(rows).format(vi="1e-8") + "\n")
    result = CliRunner().invoke(app, ["network", str(path), "--common", "--json"])
    assert result.exit_code == 0
    estimates = json.loads(result.stdout)["estimates"]
    assert abs(estimates["cau"]["estimate"] + 0.5) < 1e-8 and abs(estimates["ipt"]["estimate"] + 0.1) < 1e-8
