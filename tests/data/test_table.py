"""The comparison table: the columns other layers rely on, default and explicit comparisons, one row per
data kind, orientation of precomputed effects and statistics, and numbers carried through unchanged."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metapsych.data.load import load_studies
from metapsych.data.table import COLUMNS, comparison_table
from metapsych.data.trial_writer import dump_trial

TRIAL = """id: smith-2019
study: Smith, 2019
year: 2019
country: UK
condition: Depression
risk_of_bias: {tool: rob2, overall: some concerns}
arms:
  - {id: cbt, approach: CBT, format: ind, sessions: 12, randomized: 60}
  - {id: grp, approach: cbt, format: group, sessions: 8, randomized: 64, cluster_size: 8, icc: 0.05}
  - {id: ssri, approach: pharmacotherapy, randomized: 50}
  - {id: wl, approach: wl, randomized: 58}
outcomes:
  - instrument: bdi-ii
    timepoint: {label: post, weeks: 12}
    rating: sr
    results:
      cbt: {mean: 14.2, sd: 8.1, n: 55}
      grp: {mean: 15.0, sd: 8.4, n: 60}
      ssri: {mean: 16.0, sd: 8.0, n: 48}
      wl: {mean: 22.0, sd: 9.0, n: 52}
  - instrument: response
    timepoint: {label: follow-up, weeks: 52}
    results:
      cbt: {events: 30, n: 60}
      wl: {events: 12, n: 58}
  - instrument: hdrs-17
    timepoint: {label: post, weeks: 12}
    results:
      cbt: {change_mean: -9.1, change_sd: 6.2, n: 55}
      wl: {change_mean: -3.0, change_sd: 6.0, n: 52}
  - instrument: phq-9
    timepoint: {label: post, weeks: 12}
    precomputed: {arms: [wl, grp], g: -0.45, ci_lower: -0.8, ci_upper: -0.1}
  - instrument: my-scale
    lower_is_better: false
    timepoint: {label: post}
    statistic: {p: 0.03, favours: wl}
    results: {wl: {n: 50}, cbt: {n: 52}}
moderators: {mean_age: 41.5, recruitment: community}
"""


def _table(tmp_path: Path, text: str = TRIAL, name: str = "smith-2019"):  # type: ignore[no-untyped-def]
    (tmp_path / f"{name}.yaml").write_text(text)
    return comparison_table(load_studies(tmp_path))


def test_rows_per_data_kind_with_default_comparisons(tmp_path: Path) -> None:
    table = _table(tmp_path)
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert {"mean_age", "recruitment"} <= set(table.columns)
    pairs = list(zip(table["arm1"], table["arm2"], table["outcome_type"]))
    assert pairs == [("cbt", "wl", "msd"), ("grp", "wl", "msd"), ("cbt", "wl", "binary"), ("cbt", "wl", "change"),
                     ("grp", "wl", "precalc"), ("cbt", "wl", "statistic")]
    first = table.iloc[0]
    assert (first["condition"], first["condition_arm1"], first["condition_arm2"], first["kind_arm2"]) == \
           ("depression", "cbt", "waitlist", "control")
    assert (first["format"], first["rating"], first["rob"], first["rob_tool"]) == \
           ("individual", "self-report", "some", "rob2")
    assert (first["mean_arm1"], first["sd_arm2"], first["n_arm2"], first["rand_arm1"]) == (14.2, 9.0, 52, 60)
    grp = table.iloc[1]
    assert (grp["icc"], grp["cluster_size"], grp["n_sessions_arm1"]) == (0.05, 8, 8)
    binary = table.iloc[2]
    assert (binary["event_arm1"], binary["totaln_arm2"], binary["lower_is_better"], binary["time"]) == \
           (30, 58, False, "follow-up")
    change = table.iloc[3]
    assert (change["mean_change_arm1"], change["sd_change_arm2"], change["n_change_arm1"]) == (-9.1, 6.0, 55)
    pre = table.iloc[4]
    # given for [wl, grp], turned round into the trial's comparison grp vs wl (g and CI negated)
    assert (pre["precalc_g"], pre["precalc_ci_lower"], pre["precalc_ci_upper"], pre["kind_arm2"]) == \
           (0.45, 0.1, 0.8, "control")
    stat = table.iloc[5]
    assert (stat["p_value"], stat["stat_favours"], stat["n_arm1"], stat["n_arm2"]) == (0.03, "arm2", 52, 50)
    assert table["source_line"].tolist() == [13, 13, 21, 26, 31, 34]
    assert set(table["trial"]) == {"smith-2019"} and set(table["study"]) == {"Smith, 2019"}


def test_explicit_comparisons_include_active_and_medication_arms(tmp_path: Path) -> None:
    text = TRIAL + "comparisons: [[cbt, ssri], [cbt, grp]]\n"
    table = _table(tmp_path, text)
    msd = table[table["outcome_type"] == "msd"]
    assert list(zip(msd["arm1"], msd["arm2"], msd["kind_arm2"])) == [("cbt", "ssri", "pharmacotherapy"),
                                                                     ("cbt", "grp", "active")]


def test_empty_folder_gives_an_empty_table_with_the_columns(tmp_path: Path) -> None:
    assert list(comparison_table(load_studies(tmp_path)).columns) == COLUMNS


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: round(x, 6))
arm_data = st.fixed_dictionaries({"mean": finite, "sd": st.floats(0.01, 1e4).map(lambda x: round(x, 6)),
                                  "n": st.integers(2, 10_000)})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(therapies=st.lists(arm_data, min_size=1, max_size=3), controls=st.lists(arm_data, min_size=1, max_size=2))
def test_numbers_survive_writing_loading_and_tabulating(tmp_path: Path, therapies: list, controls: list) -> None:
    arms = [{"id": f"t{i}", "approach": "cbt"} for i in range(len(therapies))]
    arms += [{"id": f"c{i}", "approach": "waitlist"} for i in range(len(controls))]
    results = {f"t{i}": d for i, d in enumerate(therapies)} | {f"c{i}": d for i, d in enumerate(controls)}
    trial = {"id": "prop", "condition": "depression", "arms": arms,
             "outcomes": [{"instrument": "bdi-ii", "timepoint": {"label": "post"}, "results": results}]}
    folder = tmp_path / "prop"
    folder.mkdir(exist_ok=True)
    (folder / "prop.yaml").write_text(dump_trial(trial))
    table = comparison_table(load_studies(folder))
    assert len(table) == len(therapies) * len(controls)
    for row in table.to_dict("records"):
        for i in (1, 2):
            data = results[row[f"arm{i}"]]
            assert (row[f"mean_arm{i}"], row[f"sd_arm{i}"], row[f"n_arm{i}"]) == (data["mean"], data["sd"], data["n"])


def test_precomputed_effect_follows_an_explicit_comparison(tmp_path: Path) -> None:
    """Given for [grp, cbt] in a trial that compares [cbt, grp], the g is turned round into that comparison;
    a pair the trial does not compare is kept as given."""
    text = TRIAL.replace("arms: [wl, grp]", "arms: [grp, cbt]") + "comparisons: [[cbt, grp]]\n"
    pre = _table(tmp_path, text).query("outcome_type == 'precalc'").iloc[0]
    assert (pre["arm1"], pre["arm2"], pre["precalc_g"], pre["precalc_ci_upper"]) == ("cbt", "grp", 0.45, 0.8)
    text = TRIAL.replace("arms: [wl, grp]", "arms: [grp, ssri]") + "comparisons: [[cbt, grp]]\n"
    pre = _table(tmp_path, text).query("outcome_type == 'precalc'").iloc[0]
    assert (pre["arm1"], pre["arm2"], pre["precalc_g"]) == ("grp", "ssri", -0.45)
