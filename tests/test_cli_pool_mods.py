"""``metapsych pool --mods``: a meta-regression from the command line equals metafor's ``rma(mods = ~ ...)``
(fixtures made by ../shared/oracle/metafor_ref.R, see tests/fixtures/metafor/README.md), with categorical
moderators, rows with a missing moderator left out and named, permutation p-values equal to metafor's exact
``permutest``, and usage errors that exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metapsych.cli import app

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "metafor"
MODELS = {"REML": ("REML", False), "REML_knha": ("REML", True), "ML": ("ML", False), "DL": ("DL", False),
          "DL_knha": ("DL", True), "EE": ("EE", False)}
CASES = {"mvregression": "moderator,mod_reputation", "mvregression_factor": "moderator,mod_pubyear",
         "thirdwave": "moderator,mod_type", "random_mods": "moderator,mod_x2,mod_grp", "bcg": "moderator,mod_year"}


def close(ours: float | None, ref: float | None) -> bool:
    """1e-6 relative, 1e-8 absolute near zero (the project's parity tolerance)."""
    if ref is None or ours is None:
        return ours is None and ref is None
    return abs(ours - ref) <= max(1e-6 * abs(ref), 1e-8)


def pool(*args: str) -> dict:
    result = runner.invoke(app, ["pool", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_meta_regression_equals_metafor(case: str, model: str) -> None:
    ref = json.loads((FIXTURES / f"{case}.json").read_text())["meta_regression"][model]
    estimator, knha = MODELS[model]
    out = pool(str(FIXTURES / f"{case}.csv"), "--mods", CASES[case], "--estimator", estimator,
               *(["--knha"] if knha else []))
    assert list(out["coefficients"]) == ref["coef_names"]
    for name, c in out["coefficients"].items():  # metafor keeps t statistics in zval too
        for ours, theirs in (("estimate", "b"), ("se", "se"), ("statistic", "zval"), ("p_value", "pval"),
                             ("ci_lower", "ci.lb"), ("ci_upper", "ci.ub")):
            assert close(c[ours], ref[theirs][name]), (name, ours)
    pairs = [("QE", "QE"), ("QE_p", "QEp"), ("QM", "QM"), ("QM_p", "QMp")]
    if estimator != "EE":
        pairs += [("tau2", "tau2"), ("tau2_se", "se.tau2"), ("I2", "I2"), ("H2", "H2"), ("R2", "R2")]
    for ours, theirs in pairs:
        assert close(out[ours], ref[theirs]), ours
    df = ref["QMdf"] if isinstance(ref["QMdf"], list) else [ref["QMdf"], None]
    assert [out["QM_df"], out["QM_df2"]] == df
    assert out["k"] == ref["k"] and out["QE_df"] == ref["QE.df"]


def test_book_model_of_chapter_8_3() -> None:
    """rma(yi, sei, mods = ~ quality + reputation, method = "ML", test = "knha") on MVRegressionData: the
    numbers in ../shared/data/dmetar-mvregressiondata/README.md, as the table prints them."""
    result = runner.invoke(app, ["pool", str(FIXTURES / "mvregression.csv"), "--mods", "moderator,mod_reputation",
                                 "--estimator", "ML", "--knha"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    for shown in ("QE(df = 33) = 58.3042", "F(df1 = 2, df2 = 33) = 12.2476, p-val = 0.0001", "34.62%", "66.95%",
                  "0.5005", "0.2788", "0.7222", "0.0343"):
        assert shown in text, shown


def test_factor_makes_a_numeric_column_categorical(tmp_path: Path) -> None:
    raw = (FIXTURES / "mvregression_raw.csv").read_text().splitlines()
    as_text = [raw[0] + ',"label"'] + [f'{line},"c{line.rsplit(",", 1)[1].strip(chr(34))}"' for line in raw[1:]]
    path = tmp_path / "mv.csv"
    path.write_text("\n".join(as_text) + "\n", encoding="utf-8")
    numeric = pool(str(path), "--mods", "factor(continent),pubyear")
    text = pool(str(path), "--mods", "label,pubyear")
    assert list(numeric["coefficients"]) == ["intrcpt", "factor(continent)1", "pubyear"]
    assert numeric["levels"] == {"factor(continent)": ["0", "1"]}
    ref = json.loads((FIXTURES / "mvregression_factor.json").read_text())["meta_regression"]["REML"]
    for (_, ours), theirs in zip(numeric["coefficients"].items(), ref["b"].values()):
        assert close(ours["estimate"], theirs)
    assert [c["estimate"] for c in numeric["coefficients"].values()] == \
        [c["estimate"] for c in text["coefficients"].values()]


def test_rows_with_a_missing_moderator_are_left_out_and_named(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("yi,vi,year\n0.1,0.04,2001\n0.5,0.02,NA\n0.3,0.05,2010\n0.7,0.03,\n0.2,0.06,2015\n"
                    "0.6,0.02,2019\n", encoding="utf-8")
    out = pool(str(path), "--mods", "year")
    assert out["k"] == 4 and out["rows_left_out"] == [3, 5]
    assert "2 row(s) with a missing moderator left out" in out["message"]


def test_exact_permutation_p_values_equal_metafor(tmp_path: Path) -> None:
    """metafor permutest on the first six BCG trials with ablat (6! = 720 permutations: exact)."""
    lines = (FIXTURES / "bcg.csv").read_text().splitlines()[:7]
    path = tmp_path / "bcg6.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ref = json.loads((FIXTURES / "permutest.json").read_text())["ablat_k6_REML"]
    out = pool(str(path), "--mods", "moderator", "--permutations", "1000")
    perm = out["permutation"]
    assert perm["exact"] and perm["iterations"] == ref["iter"]
    assert list(perm["p_value"].values()) == pytest.approx(ref["pval"], abs=1e-12)
    assert perm["QM_p"] == pytest.approx(ref["QMp"], abs=1e-12)


@pytest.mark.parametrize("args, words", [
    (["--mods", "nope"], "no such column for --mods"),
    (["--mods", "moderator,,mod_year"], "is not a list of column names"),
    (["--mods", "moderator", "--by", "subgroup"], "--mods cannot be combined with --by"),
    (["--mods", "moderator", "--diagnostics"], "--diagnostics cannot be combined with --mods"),
    (["--permutations", "100"], "--permutations needs --mods"),
    (["--mods", "moderator", "--permutations", "-1"], "is outside 0..1,000,000"),
])
def test_usage_errors_exit_2(args: list[str], words: str) -> None:
    result = runner.invoke(app, ["pool", str(FIXTURES / "bcg.csv"), *args])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_a_moderator_no_row_has_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("yi,vi,year,format\n0.1,0.04,NA,group\n0.5,0.02,,individual\n0.3,0.05,NA,group\n",
                    encoding="utf-8")
    result = runner.invoke(app, ["pool", str(path), "--mods", "year,format"])
    assert result.exit_code == 2, result.output
    assert f"{path}: year: no row has a value of every moderator" in result.output


# --- moderators read as R reads them (found in review, helper H26; expected values from R 4.2 + metafor 3.8-1)

def _csv(tmp_path: Path, header: str, column: list[str]) -> Path:
    """12 studies with fixed yi/vi and one moderator column."""
    yi = [0.1, 0.3, 0.2, 0.5, 0.4, 0.25, 0.6, 0.05, 0.35, 0.45, 0.15, 0.55]
    vi = [0.02, 0.03, 0.04, 0.02, 0.05, 0.03, 0.02, 0.04, 0.03, 0.02, 0.05, 0.04]
    path = tmp_path / "m.csv"
    path.write_text(f"yi,vi,{header}\n" + "".join(f"{y},{v},{c}\n" for y, v, c in zip(yi, vi, column)),
                    encoding="utf-8")
    return path


def test_factor_of_numbers_orders_levels_by_value_and_names_them_as_r(tmp_path: Path) -> None:
    path = _csv(tmp_path, "num", ["2", "10", "3"] * 4)
    out = pool(str(path), "--mods", "factor( num )")
    assert list(out["coefficients"]) == ["intrcpt", "factor(num)3", "factor(num)10"]  # R: 2 is the reference
    assert out["levels"] == {"factor(num)": ["2", "3", "10"]}


@pytest.mark.parametrize("value, label", [(100000, "1e+05"), (123456, "123456"), (0.0001, "1e-04"), (2.5, "2.5"),
                                          (0.1 + 0.2, "0.3"), (1 / 3, "0.333333333333333"), (-3, "-3")])
def test_number_labels_are_r_as_character(value: float, label: str) -> None:
    from metapsych.commands.metareg import r_label

    assert r_label(value) == label


def test_text_levels_are_the_cells_as_written(tmp_path: Path) -> None:
    """'1' and '1.0' are two levels of a text column, and 'none' is a level, not a missing value."""
    path = _csv(tmp_path, "arm", ["1", "1.0", "none", "waitlist"] * 3)
    out = pool(str(path), "--mods", "arm")
    assert out["k"] == 12 and out["levels"] == {"arm": ["1", "1.0", "none", "waitlist"]}
    assert "arm is categorical because" not in (out["message"] or "")


def test_a_stray_word_in_numbers_is_named(tmp_path: Path) -> None:
    path = _csv(tmp_path, "sessions", ["8", "12", "three", "10"] * 3)
    result = runner.invoke(app, ["pool", str(path), "--mods", "sessions"])
    assert "sessions is categorical because 3 of its cells are text (line 4: 'three'" in result.output


def test_nan_is_missing(tmp_path: Path) -> None:
    out = pool(str(_csv(tmp_path, "year", ["2001", "NaN", "2010", "2015"] * 3)), "--mods", "year")
    assert out["k"] == 9 and out["rows_left_out"] == [3, 7, 11]


@pytest.mark.parametrize("column, words", [
    (["1", "Inf", "3", "4"] * 3, "m.csv:3: x: 'Inf' is not a finite number"),
    (["1", "2", "1e160", "4"] * 3, "m.csv:4: x: 1e160 is too large for a moderator"),
    (["a"] * 12, "m.csv: x: has one level ('a') in the rows analysed"),
])
def test_moderators_metafor_cannot_use_exit_2(tmp_path: Path, column: list[str], words: str) -> None:
    result = runner.invoke(app, ["pool", str(_csv(tmp_path, "x", column)), "--mods", "x"])
    assert result.exit_code == 2, result.output
    assert words in result.output


def test_coefficient_names_that_collide_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("yi,vi,g,gb\n" + "".join(f"0.{i},0.0{i % 5 + 1},{'ab'[i % 2]},{i}\n" for i in range(1, 10)),
                    encoding="utf-8")
    result = runner.invoke(app, ["pool", str(path), "--mods", "g,gb"])
    assert result.exit_code == 2, result.output
    assert "gb: two coefficients would have this name" in result.output


def test_no_moderator_left_means_no_test_of_moderators(tmp_path: Path) -> None:
    out = pool(str(_csv(tmp_path, "x", ["5"] * 12)), "--mods", "x")
    assert list(out["coefficients"]) == ["intrcpt"] and out["dropped_columns"] == ["x"]
    assert out["QM"] is None and out["QM_p"] is None and out["R2"] is None
    assert "no moderator coefficient is left" in out["message"]


@pytest.mark.parametrize("mods, words", [("moderator,MODERATOR", "name the same column"),
                                         ("factor(moderator", "is not a column name or factor(NAME)")])
def test_malformed_mods_exit_2(mods: str, words: str) -> None:
    result = runner.invoke(app, ["pool", str(FIXTURES / "bcg.csv"), "--mods", mods])
    assert result.exit_code == 2, result.output
    assert words in result.output
