"""``metapsych pool`` through the CLI: metafor parity of the JSON contract, subgroups, edge cases, bad input."""

from __future__ import annotations

import json
import warnings
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metapsych.cli import app
from tests.stats.oracle import FIXTURES, assert_close, load_json

runner = CliRunner()
CONTRACT = ["k", "estimator", "knha", "estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value", "df",
            "tau2", "tau2_se", "tau2_ci", "tau", "I2", "I2_ci", "H2", "H2_ci", "Q", "Q_df", "Q_p", "pi_lower",
            "pi_upper"]
DATASETS = ["bcg", "normand", "thirdwave", "suicideprevention", "random_mods", "edge_k2", "edge_extreme",
            "edge_varrange"]


def pool(*args: str) -> tuple[int, dict | str]:
    result = runner.invoke(app, ["pool", *args])
    if result.exit_code == 0 and "--json" in args:
        return 0, json.loads(result.stdout)
    return result.exit_code, result.stdout + (result.stderr if result.stderr_bytes is not None else "")


def _no_nan(value: object) -> None:
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, dict):
        for item in value.values():
            _no_nan(item)
    elif isinstance(value, list):
        for item in value:
            _no_nan(item)


def _check_model(label: str, out: dict, fit_block: dict, confint: dict | None, predict: dict | None) -> None:
    assert set(CONTRACT) <= set(out)
    _no_nan(out)
    pairs = [("estimate", "b"), ("se", "se"), ("ci_lower", "ci.lb"), ("ci_upper", "ci.ub"), ("statistic", "zval"),
             ("p_value", "pval"), ("tau2", "tau2"), ("tau", "tau"), ("I2", "I2"), ("H2", "H2"), ("Q", "QE"),
             ("Q_p", "QEp")]
    for ours, theirs in pairs:
        assert_close(f"{label} {ours}", out[ours], fit_block[theirs])
    if out["estimator"] != "EE":
        assert_close(f"{label} tau2_se", out["tau2_se"], fit_block["se.tau2"])
    assert out["Q_df"] == fit_block["QE.df"]
    if "df" in fit_block:
        assert out["df"] == fit_block["df"]
    if confint is not None:
        for key in ("tau2", "I2", "H2"):
            assert_close(f"{label} {key}_ci", out[f"{key}_ci"], [confint[key]["ci.lb"], confint[key]["ci.ub"]])
    if predict is not None:
        assert_close(f"{label} pi", [out["pi_lower"], out["pi_upper"]], [predict["pi.lb"], predict["pi.ub"]])


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("estimator", ["EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "GENQ"])
def test_pool_json_matches_metafor(name: str, estimator: str) -> None:
    ref = load_json(name)
    code, out = pool(str(FIXTURES / f"{name}.csv"), "--estimator", estimator, "--json")
    assert code == 0
    predict = ref["predict"].get(estimator, {}).get("default")
    confint = ref["confint"].get(estimator)
    confint = None if confint is None or "error" in confint else confint  # GENQ: R needs CompQuadForm
    _check_model(f"{name}/{estimator}", out, ref["estimators"][estimator], confint, predict)
    assert out["knha"] is False and out["df"] is None
    assert out["methods"]["tau2_ci"].startswith("Q-profile" if estimator != "EE" else "none")


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("estimator", ["DL", "REML", "PM"])
def test_pool_knha_matches_metafor(name: str, estimator: str) -> None:
    ref = load_json(name)
    code, out = pool(str(FIXTURES / f"{name}.csv"), "--estimator", estimator, "--knha", "--json")
    assert code == 0
    predict = ref["predict"].get(f"{estimator}_knha")
    _check_model(f"{name}/{estimator}/knha", out, ref["knha"][estimator], ref["confint"][estimator], predict)
    assert out["knha"] is True


def test_pool_level() -> None:
    ref = load_json("thirdwave_level90")
    code, out = pool(str(FIXTURES / "thirdwave.csv"), "--level", "0.9", "--json")
    assert code == 0
    _check_model("level90", out, ref["estimators"]["REML"], ref["confint"]["REML"], ref["predict"]["REML"]["default"])


@pytest.mark.parametrize("name", ["bcg", "thirdwave", "suicideprevention", "random_mods", "edge_subgroup_single"])
@pytest.mark.parametrize("model,args", [("REML", []), ("REML_knha", ["--knha"]), ("DL", ["--estimator", "DL"]),
                                        ("EE", ["--estimator", "EE"])])
def test_pool_by_matches_metafor(name: str, model: str, args: list[str]) -> None:
    ref = load_json(name)["subgroups"]
    code, out = pool(str(FIXTURES / f"{name}.csv"), "--by", "subgroup", "--json", *args)
    assert code == 0
    _no_nan(out)
    assert list(out["subgroups"]) == ref["levels"]
    for level in ref["levels"]:
        block = ref["per_subgroup"][level][model]
        sub = out["subgroups"][level]
        for ours, theirs in (("estimate", "b"), ("se", "se"), ("ci_lower", "ci.lb"), ("ci_upper", "ci.ub"),
                             ("p_value", "pval")):
            assert_close(f"{name}/{level}/{model} {ours}", sub[ours], block[theirs])
        if sub["k"] > 1:
            for ours, theirs in (("tau2", "tau2"), ("I2", "I2"), ("Q", "QE")):
                assert_close(f"{name}/{level}/{model} {ours}", sub[ours], block[theirs])
        else:
            assert sub["tau2"] is None and "single study" in sub["message"]
    separate = ref["test"].get(f"separate_tau2_{model}")
    if separate is not None:
        assert_close("Q_between", out["test"]["Q_between"], separate["Qb"])
        assert_close("Q_between p", out["test"]["p_value"], separate["pval"])
        assert out["test"]["df"] == separate["df"]
    common = ref["test"][model]
    assert_close("QM", out["test_common_tau2"]["QM"], common["QM"])
    assert_close("QM p", out["test_common_tau2"]["p_value"], common["QMp"])
    assert_close("common tau2", out["test_common_tau2"]["tau2"], common["tau2"])


def test_book_thirdwave_via_cli() -> None:
    """Harrer et al. (2021) ch. 4.2.1, reproduced by ``metapsych pool --knha``."""
    code, out = pool(str(FIXTURES / "thirdwave.csv"), "--knha", "--json")
    assert code == 0
    assert round(out["estimate"], 4) == 0.5771
    assert [round(x, 4) for x in (out["ci_lower"], out["ci_upper"])] == [0.3782, 0.7760]
    assert round(out["statistic"], 2) == 6.12 and out["df"] == 17
    assert [round(x, 4) for x in out["tau2_ci"]] == [0.0295, 0.3533] and round(out["tau2"], 4) == 0.0820
    assert round(out["Q"], 2) == 45.50 and out["Q_df"] == 17


def test_text_output_names_methods() -> None:
    code, text = pool(str(FIXTURES / "thirdwave.csv"), "--knha")
    assert code == 0
    assert "0.5771" in text and "[0.0295, 0.3533]" in text and "Q-profile" in text and "Hartung-Knapp" in text


def test_edge_k1() -> None:
    code, out = pool(str(FIXTURES / "edge_k1.csv"), "--json", "--knha")
    assert code == 0
    ref = load_json("edge_k1")["estimators"]["REML"]
    assert_close("k1 estimate", out["estimate"], ref["b"])
    assert_close("k1 ci", [out["ci_lower"], out["ci_upper"]], [ref["ci.lb"], ref["ci.ub"]])
    assert out["tau2"] is None and out["I2"] is None and "not estimable" in out["message"]


def test_edge_identical_effects() -> None:
    code, out = pool(str(FIXTURES / "edge_identical.csv"), "--json", "--knha")
    assert code == 0
    assert out["tau2"] == 0 and out["I2"] == 0 and out["tau2_ci"] == [0, 0]
    assert out["statistic"] is None and "identical" in out["message"]


def test_semicolon_decimal_comma_and_sei(tmp_path: Path) -> None:
    semi = tmp_path / "semi.csv"
    semi.write_text("study;g;se\nA;0,5;0,2\nB;0,1;0,1\nC;0,9;0,3\n", encoding="utf-8")
    plain = tmp_path / "plain.csv"
    plain.write_text("study,yi,vi\nA,0.5,0.04\nB,0.1,0.01\nC,0.9,0.09\n", encoding="utf-8")
    _, a = pool(str(semi), "--json")
    _, b = pool(str(plain), "--json")
    assert_close("semi", a["estimate"], b["estimate"])
    assert_close("semi tau2", a["tau2"], b["tau2"])


@pytest.mark.parametrize("content,needle", [
    ("", "empty"),
    ("study,yi\nA,0.5\n", "yi and vi"),
    ("study,yi,vi\n", "no data rows"),
    ("study,yi,vi\nA,0.5,0.04\nB,abc,0.01\n", ":3: yi: 'abc' is not a number"),
    ("study,yi,vi\nA,0.5,0.04\nB,0.2,-0.01\n", ":3: vi: -0.01 is not positive"),
    ("study,yi,vi\nA,0.5,\n", ":2: vi: missing value"),
])
def test_bad_input_exit_2(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    code, text = pool(str(path), "--json")
    assert code == 2
    assert needle in text and "Traceback" not in text


@pytest.mark.parametrize("args,needle", [
    (["--estimator", "XYZ"], "unknown estimator"),
    (["--level", "1.5"], "outside (0, 1)"),
    (["--by", "nope"], "nope: no such column"),
])
def test_bad_options_exit_2(args: list[str], needle: str) -> None:
    code, text = pool(str(FIXTURES / "bcg.csv"), "--json", *args)
    assert code == 2
    assert needle in text


def test_missing_file_exit_2(tmp_path: Path) -> None:
    code, text = pool(str(tmp_path / "absent.csv"))
    assert code == 2 and "absent.csv" in text


def test_thirdwave_subgroups_match_readme() -> None:
    """dmetar-thirdwave README: RiskOfBias high 0.8126 [0.2835; 1.3417], low 0.4300 [0.2770; 0.5830] (REML + HK)."""
    code, out = pool(str(FIXTURES / "thirdwave.csv"), "--by", "subgroup", "--knha", "--json")
    assert code == 0
    high, low = out["subgroups"]["high"], out["subgroups"]["low"]
    assert (high["k"], low["k"]) == (7, 11)
    assert [round(high[key], 4) for key in ("estimate", "ci_lower", "ci_upper", "tau2")] == [0.8126, 0.2835, 1.3417,
                                                                                             0.2423]
    assert [round(low[key], 4) for key in ("estimate", "ci_lower", "ci_upper", "tau2")] == [0.4300, 0.2770, 0.5830,
                                                                                            0.0099]


def test_text_output_of_subgroups() -> None:
    """Without --json, ``--by`` prints every subgroup's model and both tests for subgroup differences."""
    code, text = pool(str(FIXTURES / "thirdwave.csv"), "--by", "subgroup", "--knha")
    assert code == 0, text
    flat = " ".join(str(text).split())  # rich wraps lines at the terminal width
    assert "subgroup high" in flat and "subgroup low" in flat and "0.8126" in flat and "0.4300" in flat
    assert "Test for subgroup differences" in flat and "Moderator test with common tau^2" in flat
    assert "Hartung-Knapp" in flat


def test_duplicate_column_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("yi,vi,YI\n0.5,0.1,1\n0.3,0.2,1\n")
    code, text = pool(str(path))
    assert code == 2 and "dup.csv:1: YI: the column appears more than once" in " ".join(str(text).split())


def test_extreme_variances_give_numbers_without_warnings(tmp_path: Path) -> None:
    path = tmp_path / "extreme.csv"
    path.write_text("yi,vi\n0.5,1e-100\n0.3,1e300\n")  # the floor: 1e-100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out = pool(str(path), "--json")
    assert code == 0 and out["estimate"] == 0.5


def test_by_json_with_a_subgroup_that_does_not_converge(monkeypatch: pytest.MonkeyPatch) -> None:
    """A subgroup whose fit fails has null numbers and null weights in the JSON (its NaN weights made the
    JSON encoder fail after the failed fit stopped reporting numbers it does not have)."""
    import metapsych.stats.subgroup as subgroup
    from metapsych.stats.tau2 import Control

    original = subgroup.fit_many
    monkeypatch.setattr(subgroup, "fit_many",
                        lambda *a, **kw: original(*a, **{**kw, "control": Control(threshold=1e-10, maxiter=1)}))
    code, out = pool(str(FIXTURES / "thirdwave.csv"), "--by", "subgroup", "--json")
    assert code == 0, out
    failed = [b for b in out["subgroups"].values() if b["tau2"] is None]
    assert failed and all(b["Q"] is None and all(w is None for w in b["weights"]) for b in failed)


@pytest.mark.parametrize("command", ["pool", "network"])
def test_a_row_wider_than_its_header_is_refused(tmp_path: Path, command: str) -> None:
    """A decimal comma in a comma-separated file splits a number in two: the row is refused, not read shifted
    (it gave yi = 0, vi = 5 and exit 0)."""
    header = "study,yi,vi" if command == "pool" else "study,treat1,treat2,yi,vi"
    row = "a,0,5,0,04" if command == "pool" else "a,cbt,wl,0,5,0,04"
    path = tmp_path / "data.csv"
    path.write_text(f"{header}\n{row}\nb{',cbt,wl' if command == 'network' else ''},0.3,0.02\n")
    result = runner.invoke(app, [command, str(path)])
    assert result.exit_code == 2, result.output
    assert "data.csv:2: (row): row has" in result.stderr and "Traceback" not in result.output
    path.write_text(f"{header},\n{row.replace('0,5,0,04', '0.5,0.04')},,\n")  # empty trailing cells are fine
    assert runner.invoke(app, [command, str(path)]).exit_code == 0


@pytest.mark.parametrize("column, value", [("vi", "1e-320"), ("sei", "1e-60")])
def test_a_variance_whose_weight_would_overflow_is_refused(tmp_path: Path, column: str, value: str) -> None:
    """vi = 1e-320 ended in an internal error (the weight 1/vi is infinite); the floor is 1e-100."""
    path = tmp_path / "data.csv"
    path.write_text(f"study,yi,{column}\na,0.1,{value}\nb,0.3,0.02\nc,0.2,0.03\n")
    result = runner.invoke(app, ["pool", str(path)])
    assert result.exit_code == 2 and f"data.csv:2: {column}: {value} is implausibly small" in result.stderr
    path.write_text(f"study,yi,{column}\na,0.1,1e-50\nb,0.3,0.02\nc,0.2,0.03\n")
    assert runner.invoke(app, ["pool", str(path)]).exit_code == 0


def test_an_unterminated_quote_is_located_at_its_row(tmp_path: Path) -> None:
    """The quote swallowed the rest of the file, which was reported as 'yi: missing value'."""
    path = tmp_path / "data.csv"
    path.write_text('study,yi,vi\n"a,0.5,0.04\nb,0.3,0.05\nc,0.8,0.02\n')
    result = runner.invoke(app, ["pool", str(path)])
    assert result.exit_code == 2 and "data.csv:2: (row): malformed CSV" in result.stderr
    assert "a quote opened in this row is never closed" in result.stderr
