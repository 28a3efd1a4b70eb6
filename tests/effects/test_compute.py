"""compute_effects: formula choice, direction, zero cells, clustering, validation, and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metapsych.effects import binary, continuous, convert
from metapsych.effects.compute import compute_effects
from metapsych.errors import DataError, InputError

MEANS = {"mean_arm1": 10.0, "sd_arm1": 4.0, "n_arm1": 30, "mean_arm2": 14.0, "sd_arm2": 5.0, "n_arm2": 28}


def _one(measure: str = "g", **cols: object) -> pd.Series:
    return compute_effects(pd.DataFrame([cols]), measure=measure).iloc[0]


def test_means_take_priority_and_lower_is_better_by_default() -> None:
    row = _one(**MEANS, precalc_g=9.0, precalc_g_se=0.1, instrument="bdi-ii")
    ref = continuous.smd(14.0, 5.0, 28, 10.0, 4.0, 30)
    assert row.formula == "smd_from_means" and row.why_missing is None
    assert row.yi == pytest.approx(float(ref.yi), rel=1e-12) and row.yi > 0
    assert row.vi == pytest.approx(float(ref.vi), rel=1e-12)
    assert row.sei == pytest.approx(np.sqrt(row.vi))


def test_events_come_before_a_precalculated_g_as_in_metapsytools() -> None:
    """calculateEffectSizes tries means, change scores, binary, then precalculated g; so does the importer.
    Bisson 2020 in the PTSD database has both (10/20 vs 2/20 and a g computed with an approximate J)."""
    row = _one(event_arm1=10, totaln_arm1=20, event_arm2=2, totaln_arm2=20, precalc_g=1.18733, precalc_g_se=0.4,
               outcome_type="response")
    lor = binary.log_or(binary.table_from_events(10, 20, 2, 20))
    expected = convert.logor_to_smd(lor.yi, lor.vi)  # R: escalc("OR2DL", ...) 1.21139
    assert row.formula == "smd_from_logor" and row.yi == pytest.approx(float(expected.yi), rel=1e-12)


def test_explicit_direction_wins() -> None:
    up = _one(**MEANS, lower_is_better=False)
    down = _one(**MEANS, lower_is_better=True)
    assert up.yi == pytest.approx(-down.yi) and up.vi == pytest.approx(down.vi)


def test_vocabulary_direction_for_an_instrument_where_higher_is_better() -> None:
    class Vocab:
        def instrument_lower_is_better(self, name: str) -> bool | None:
            return {"wellbeing": False}.get(name)

    table = pd.DataFrame([{**MEANS, "instrument": "wellbeing"}, {**MEANS, "instrument": "unknown-scale"}])
    out = compute_effects(table, vocabulary=Vocab())
    assert out.yi[0] == pytest.approx(-out.yi[1]) and out.yi[1] > 0


def test_md_and_change_scores() -> None:
    row = _one("md", **MEANS)
    assert row.formula == "md_from_means" and row.yi == pytest.approx(4.0)
    assert row.vi == pytest.approx(16 / 30 + 25 / 28)
    ch = _one(mean_change_arm1=-8, sd_change_arm1=5, n_change_arm1=20, mean_change_arm2=-3, sd_change_arm2=6,
              n_change_arm2=22)
    ref = continuous.smd(-3, 6, 22, -8, 5, 20)
    assert ch.formula == "smd_from_change" and ch.yi == pytest.approx(float(ref.yi), rel=1e-12)


def test_statistics_are_oriented_by_stat_favours() -> None:
    base = {"n_arm1": 30, "n_arm2": 28}
    t1 = _one(**base, t_value=2.5, stat_favours="arm1")
    t2 = _one(**base, t_value=2.5, stat_favours="arm2")
    ref = convert.smd_from_t(2.5, 30, 28)
    assert t1.formula == "smd_from_t" and t1.yi == pytest.approx(float(ref.yi), rel=1e-12)
    assert t2.yi == pytest.approx(-t1.yi)
    f = _one(**base, f_value=6.25, stat_favours="arm1")
    assert f.formula == "smd_from_f" and f.yi == pytest.approx(t1.yi, rel=1e-12)
    p = _one(**base, p_value=0.03, stat_favours="arm1")
    assert p.formula == "smd_from_p" and p.yi > 0
    missing = _one(**base, t_value=2.5)
    assert np.isnan(missing.yi) and "stat_favours" in missing.why_missing


def test_events_zero_cells_and_double_zeros() -> None:
    table = pd.DataFrame([
        {"event_arm1": 30, "totaln_arm1": 60, "event_arm2": 12, "totaln_arm2": 58},
        {"event_arm1": 5, "totaln_arm1": 25, "event_arm2": 0, "totaln_arm2": 25},
        {"event_arm1": 0, "totaln_arm1": 40, "event_arm2": 0, "totaln_arm2": 38},
    ])
    g = compute_effects(table, "g")
    assert list(g.formula[:2]) == ["smd_from_logor", "smd_from_logor_cc"]
    lor = binary.log_or(binary.table_from_events(30, 60, 12, 58))
    assert g.yi[0] == pytest.approx(float(lor.yi) * np.sqrt(3) / np.pi, rel=1e-12) and g.yi[0] > 0
    assert np.isnan(g.yi[2]) and g.why_missing[2].startswith("double zero")
    for measure in ("or", "rr"):
        out = compute_effects(table, measure)
        assert out.formula[1] == f"log{measure}_from_events_cc" and np.isnan(out.yi[2])
        assert "double zero" in out.why_missing[2]
    rd = compute_effects(table, "rd")
    expected = binary.risk_difference(binary.table_from_cells(0, 40, 0, 38))  # 1/2 added, as metafor does
    assert rd.formula[2] == "rd_from_events_cc" and rd.yi[2] == pytest.approx(float(expected.yi), rel=1e-12)
    off = compute_effects(table, "g", convert_binary=False)
    assert off.yi.isna().all() and "switched off" in off.why_missing[0]


def test_precalculated_log_rr_for_measure_rr() -> None:
    row = _one("rr", precalc_log_rr=0.3, precalc_log_rr_se=0.1)
    assert row.formula == "logrr_precalc_se" and row.yi == 0.3 and row.vi == pytest.approx(0.01)
    assert _one("rr", precalc_log_rr=0.3).why_missing.startswith("precalc_log_rr needs")


def test_fewer_events_better_flips_the_sign() -> None:
    ev = {"event_arm1": 5, "totaln_arm1": 60, "event_arm2": 15, "totaln_arm2": 58}
    assert _one("or", **ev, lower_is_better=True).yi == pytest.approx(-_one("or", **ev).yi)
    assert _one("or", **ev).yi < 0  # default: events are responders, more is better


def test_events_direction_comes_from_outcome_type_not_the_scale() -> None:
    class Vocab:
        def instrument_lower_is_better(self, name: str) -> bool | None:
            return {"hdrs": True, "response": False, "deterioration": True}.get(name)

    row = {**MEANS, "instrument": "hdrs", "event_arm1": 5, "totaln_arm1": 30, "event_arm2": 10, "totaln_arm2": 28}
    table = pd.DataFrame([{**row, "outcome_type": "response"}, {**row, "outcome_type": "deterioration"}])
    odds = compute_effects(table, "or", vocabulary=Vocab())
    assert odds.yi[0] < 0 and odds.yi[1] == pytest.approx(-odds.yi[0])
    g = compute_effects(table, "g", vocabulary=Vocab())
    assert (g.formula == "smd_from_means").all() and (g.yi > 0).all()


def test_rows_without_data_are_kept_with_a_reason() -> None:
    out = compute_effects(pd.DataFrame([{"study": "a"}, {"study": "b", "mean_arm1": 3.0, "n_arm1": 5}]))
    assert len(out) == 2 and out.yi.isna().all()
    assert out.why_missing[0].startswith("no effect-size data")
    assert "sd_arm1" in out.why_missing[1] and out.formula.isna().all()
    md = compute_effects(pd.DataFrame([{"event_arm1": 1, "totaln_arm1": 9, "event_arm2": 2, "totaln_arm2": 9}]), "md")
    assert md.why_missing[0] == "events cannot give measure md"


def test_metapsytools_dot_g_alone_is_not_used() -> None:
    row = _one(**{".g": -0.3, ".g_se": 0.1})
    assert np.isnan(row.yi) and "not used" in row.why_missing and "precalc_g" in row.why_missing


def test_nnt_column_for_g_only() -> None:
    row = _one(**MEANS)
    assert row.nnt == pytest.approx(1 / (__import__("scipy").stats.norm.cdf(row.yi - 0.8416212335729143) - 0.2))
    assert "nnt" not in compute_effects(pd.DataFrame([MEANS]), "md")


def test_design_effect_divides_n() -> None:
    row = _one(**MEANS, icc=0.05, cluster_size=9)
    ref = continuous.smd(14.0, 5.0, 28, 10.0, 4.0, 30 / 1.4)
    assert row.yi == pytest.approx(float(ref.yi), rel=1e-12) and row.vi == pytest.approx(float(ref.vi), rel=1e-12)
    assert row.design_effect == pytest.approx(1.4)
    both = _one(**MEANS, icc=0.05, cluster_size=9, icc_arm2=0.05, cluster_size_arm2=9)
    ref2 = continuous.smd(14.0, 5.0, 28 / 1.4, 10.0, 4.0, 30 / 1.4)
    assert both.vi == pytest.approx(float(ref2.vi), rel=1e-12)


def test_bad_numbers_are_all_reported_with_file_line_and_field() -> None:
    table = pd.DataFrame([
        {**MEANS, "sd_arm1": 0.0, "source_file": "x.csv", "source_line": 2},
        {**MEANS, "n_arm2": 1, "source_file": "x.csv", "source_line": 3},
        {"event_arm1": 12, "totaln_arm1": 10, "event_arm2": -1, "totaln_arm2": 10, "source_file": "x.csv",
         "source_line": 4},
        {"p_value": 1.0, "precalc_g": 0.3, "precalc_g_se": 0.0, "n_arm1": 5, "n_arm2": 5, "source_file": "x.csv",
         "source_line": 5},
        {"mean_arm1": "abc", "source_file": "x.csv", "source_line": 6},
        {"stat_favours": "therapy", "icc": 1.5, "source_file": "x.csv", "source_line": 7},
    ])
    with pytest.raises(DataError) as err:
        compute_effects(table)
    found = {(p.line, p.field) for p in err.value.problems}
    assert found == {(2, "sd_arm1"), (3, "n_arm2"), (4, "event_arm1"), (4, "event_arm2"), (5, "p_value"),
                     (5, "precalc_g_se"), (6, "mean_arm1"), (7, "stat_favours"), (7, "icc"), (7, "cluster_size")}
    assert "x.csv:2: sd_arm1: must be positive" in str(err.value)
    assert err.value.exit_code == 2


def test_infinite_values_are_rejected() -> None:
    with pytest.raises(DataError) as err:
        compute_effects(pd.DataFrame([{"precalc_g": np.inf, "precalc_g_se": 0.2}]), file="in.csv")
    assert "in.csv:2: precalc_g: infinite value" in str(err.value)


def test_design_effect_leaving_too_few_participants_is_explained() -> None:
    row = _one(**{**MEANS, "n_arm1": 2, "n_arm2": 2}, icc=0.9, cluster_size=20, icc_arm2=0.9, cluster_size_arm2=20)
    assert np.isnan(row.yi) and row.formula is None
    assert row.why_missing.startswith("smd_from_means gave no finite effect")


def test_lines_default_to_row_position() -> None:
    with pytest.raises(DataError) as err:
        compute_effects(pd.DataFrame([MEANS, {**MEANS, "sd_arm2": -1}]), file="in.csv")
    assert str(err.value).startswith("in.csv:3: sd_arm2")


def test_unknown_measure() -> None:
    with pytest.raises(InputError):
        compute_effects(pd.DataFrame([MEANS]), measure="smd")


# ----------------------------------------------------------------- properties
arm = st.tuples(
    st.floats(-50, 50), st.floats(0.5, 30), st.integers(2, 5000)
)


@settings(max_examples=60, deadline=None)
@given(arm, arm)
def test_swapping_arms_flips_the_sign(a1: tuple, a2: tuple) -> None:
    fwd = continuous.smd(a1[0], a1[1], a1[2], a2[0], a2[1], a2[2])
    rev = continuous.smd(a2[0], a2[1], a2[2], a1[0], a1[1], a1[2])
    np.testing.assert_allclose(rev.yi, -fwd.yi, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rev.vi, fwd.vi, rtol=1e-12)
    lor = binary.log_or(binary.table_from_events(min(a1[2] - 1, 7), a1[2], min(a2[2] - 1, 3), a2[2]))
    back = binary.log_or(binary.table_from_events(min(a2[2] - 1, 3), a2[2], min(a1[2] - 1, 7), a1[2]))
    np.testing.assert_allclose(back.yi, -lor.yi, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(arm, arm, st.floats(1e-3, 1e3))
def test_scaling_means_and_sds_leaves_g_unchanged(a1: tuple, a2: tuple, c: float) -> None:
    base = continuous.smd(a1[0], a1[1], a1[2], a2[0], a2[1], a2[2])
    scaled = continuous.smd(c * a1[0], c * a1[1], a1[2], c * a2[0], c * a2[1], a2[2])
    np.testing.assert_allclose(scaled.yi, base.yi, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scaled.vi, base.vi, rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(arm, arm, st.floats(1, 50))
def test_icc_zero_changes_nothing(a1: tuple, a2: tuple, m: float) -> None:
    cols = dict(zip(["mean_arm1", "sd_arm1", "n_arm1"], a1)) | dict(zip(["mean_arm2", "sd_arm2", "n_arm2"], a2))
    plain = compute_effects(pd.DataFrame([cols]))
    icc0 = compute_effects(pd.DataFrame([{**cols, "icc": 0.0, "cluster_size": m, "icc_arm2": 0.0,
                                          "cluster_size_arm2": m}]))
    np.testing.assert_array_equal(plain[["yi", "vi"]].to_numpy(), icc0[["yi", "vi"]].to_numpy())
    assert icc0.design_effect[0] == 1.0


@settings(max_examples=60, deadline=None)
@given(st.floats(1, 5000), st.floats(1.5, 100), st.floats(0, 0.99))
def test_design_effect_divides_n_property(n: float, m: float, icc: float) -> None:
    assert convert.effective_n(n, m, icc) == pytest.approx(n / (1 + (m - 1) * icc), rel=1e-12)
    assert convert.effective_n(n, m, icc) <= n


@settings(max_examples=60, deadline=None)
@given(st.floats(-3, 3), st.floats(0.01, 2))
def test_symmetric_ci_equals_se(g: float, se: float) -> None:
    z = 1.959963984540054
    with_se = compute_effects(pd.DataFrame([{"precalc_g": g, "precalc_g_se": se}])).iloc[0]
    with_ci = compute_effects(pd.DataFrame([{"precalc_g": g, "precalc_ci_lower": g - z * se,
                                             "precalc_ci_upper": g + z * se}])).iloc[0]
    assert with_ci.formula == "smd_precalc_ci" and with_se.formula == "smd_precalc_se"
    assert with_ci.yi == with_se.yi
    assert with_ci.vi == pytest.approx(with_se.vi, rel=1e-9)


def test_relapse_events_are_harmful_by_default() -> None:
    """An event type the vocabulary did not know counted as a response: fewer relapses on therapy gave a
    negative g on 'effects FILE.csv' (and a positive one through the importer)."""
    row = _one(event_arm1=5, totaln_arm1=40, event_arm2=15, totaln_arm2=40, outcome_type="relapse")
    assert row.formula == "smd_from_logor" and row.yi > 0
