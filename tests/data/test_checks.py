"""Trial-file checks on values a fuzzer or a careless edit produces: true/false as numbers, fractions of
participants, implausible years and percentages, and numbers so large that the effect formulas overflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from metapsych.data.load import check_file
from metapsych.data.vocabulary import load_vocabulary
from metapsych.errors import Problem

TRIAL = """id: smith-2019
condition: depression
year: 2019
arms:
  - {id: cbt, approach: cbt, randomized: 60}
  - {id: wl, approach: waitlist, randomized: 58}
outcomes:
  - instrument: bdi-ii
    timepoint: {label: post, weeks: 12}
    results:
      cbt: {mean: 14.2, sd: 8.1, n: 55}
      wl: {mean: 22.0, sd: 9.0, n: 52}
"""
IMPORTED = "source: {database: metapsy depression-psyctr, version: 24.0.2}\n"


def problems(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "smith-2019.yaml"
    path.write_text(text, encoding="utf-8")
    _, found = check_file(path, load_vocabulary())
    return found


def only(found: list[Problem], severity: str = "error") -> list[tuple[str, str]]:
    return [(p.field, p.problem) for p in found if p.severity == severity]


def test_the_base_trial_is_clean(tmp_path: Path) -> None:
    assert only(problems(tmp_path, TRIAL)) == []


@pytest.mark.parametrize("old, new, field", [
    ("sd: 8.1", "sd: true", "outcomes[0].results.cbt.sd"),
    ("randomized: 60", "randomized: false", "arms[0].randomized"),
    ("year: 2019", "year: true", "year"),
])
def test_true_or_false_is_not_a_number(tmp_path: Path, old: str, new: str, field: str) -> None:
    found = only(problems(tmp_path, TRIAL.replace(old, new)))
    assert found == [(field, f"{new.split(': ')[1]} is not a number")]  # not also "sd is missing"


def test_a_fraction_of_a_participant_is_an_error_in_a_hand_written_file(tmp_path: Path) -> None:
    found = problems(tmp_path, TRIAL.replace("n: 55", "n: 55.5"))
    assert only(found) == [("outcomes[0].results.cbt.n", "n is 55.5, not a whole number")]


def test_imported_databases_keep_fractional_counts_with_a_warning(tmp_path: Path) -> None:
    found = problems(tmp_path, TRIAL.replace("n: 55", "n: 55.5") + IMPORTED)
    assert only(found) == []
    assert ("outcomes[0].results.cbt.n", "n is 55.5, not a whole number") in only(found, "warning")


@pytest.mark.parametrize("year", ["-5", "1850", "20190", "999999999999999999999999"])
def test_implausible_years(tmp_path: Path, year: str) -> None:
    found = only(problems(tmp_path, TRIAL.replace("year: 2019", f"year: {year}")))
    assert [field for field, _ in found] == ["year"]


@pytest.mark.parametrize("old, new, field", [
    ("sd: 8.1", "sd: 1e200", "outcomes[0].results.cbt.sd"),          # squared: OverflowError before
    ("mean: 14.2", "mean: 1e308", "outcomes[0].results.cbt.mean"),    # difference of means overflowed
    ("randomized: 60", "randomized: 100000000000000000000", "arms[0].randomized"),
    ("weeks: 12", "weeks: .inf", "outcomes[0].timepoint.weeks"),
])
def test_huge_and_infinite_numbers_are_located_errors(tmp_path: Path, old: str, new: str, field: str) -> None:
    found = only(problems(tmp_path, TRIAL.replace(old, new)))
    assert field in [f for f, _ in found]


@pytest.mark.parametrize("value, ok", [("150", False), ("-1", False), (".nan", False), ("true", False),
                                       ("0.7", True), ("70", True), ("'0.73 | 0.67'", True)])
def test_percentage_moderators(tmp_path: Path, value: str, ok: bool) -> None:
    found = only(problems(tmp_path, TRIAL + f"moderators: {{percent_women: {value}, recruitment: clinic}}\n"))
    assert (found == []) is ok, found


def test_a_trial_without_outcomes_or_without_any_comparison_is_an_error(tmp_path: Path) -> None:
    assert only(problems(tmp_path, TRIAL.split("outcomes:")[0] + "outcomes: []\n")) == [("outcomes", "no outcomes")]
    found = only(problems(tmp_path, TRIAL.replace("approach: cbt", "approach: care-as-usual")))
    assert found == [("arms", "no therapy arm, so no comparison is made by default")]


def test_a_control_arm_listed_first_would_flip_the_effect(tmp_path: Path) -> None:
    text = TRIAL + "comparisons: [[wl, cbt]]\n"
    assert only(problems(tmp_path, text)) == [("comparisons[0]", "control arm 'wl' listed first, against 'cbt'")]
    assert only(problems(tmp_path, text + IMPORTED)) == []


@pytest.mark.parametrize("old, new, field, message", [
    ("sd: 8.1", "sd: 8_1", "outcomes[0].results.cbt.sd", "'8_1' is not a number (no digit separators)"),
    ("weeks: 12", "weeks: 1:30", "outcomes[0].timepoint.weeks", "unable to parse string as a number"),
    ("n: 52", "n: -52", "outcomes[0].results.wl.n", "n is -52"),  # an internal error (sqrt) before
])
def test_numbers_yaml_1_1_would_read_otherwise_and_negative_counts(tmp_path: Path, old: str, new: str, field: str,
                                                                    message: str) -> None:
    found = only(problems(tmp_path, TRIAL.replace(old, new)))
    assert len(found) == 1 and found[0][0] == field and message in found[0][1], found


def test_a_moderator_cannot_take_a_column_name(tmp_path: Path) -> None:
    """A trial moderator named like an effect-size input became that input (precalc_log_rr: 5 gave yi = 5)."""
    found = only(problems(tmp_path, TRIAL + "moderators: {precalc_log_rr: 5, precalc_log_rr_se: 0.1, age: 40}\n"))
    assert [field for field, _ in found] == ["moderators.precalc_log_rr", "moderators.precalc_log_rr_se"]
    assert "is a column of the comparison table, not a moderator" in found[0][1]


@pytest.mark.parametrize("statistic, field", [("{t: 50, favours: cbt}", "t"), ("{f: 2500, favours: cbt}", "f"),
                                              ("{p: 1.0e-300, favours: cbt}", "p")])
def test_a_statistic_implying_a_huge_effect_is_flagged(tmp_path: Path, statistic: str, field: str) -> None:
    """t = 50 with about 50 per arm implies g = 9.6; validate called it clean."""
    text = TRIAL.replace("      cbt: {mean: 14.2, sd: 8.1, n: 55}\n      wl: {mean: 22.0, sd: 9.0, n: 52}\n",
                         f"      cbt: {{n: 55}}\n      wl: {{n: 52}}\n    statistic: {statistic}\n")
    found = problems(tmp_path, text)
    assert only(found) == []
    warned = only(found, "warning")
    assert len(warned) == 1 and warned[0][0] == f"outcomes[0].statistic.{field}" and "very large effect" in warned[0][1]
    assert only(problems(tmp_path, text.replace(statistic, "{t: 2.5, favours: cbt}")), "warning") == []
