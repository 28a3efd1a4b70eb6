"""Reproducing the Metapsy depression database's own ``.g`` / ``.g_se`` columns (metapsyTools output).

Finding (a different formula upstream, not an error on either side): metapsyTools computes g with the
R package ``esc``, which uses the approximation J = 1 - 3/(4N - 9) and reports the SE of the
*uncorrected* d, sqrt(N/(n1 n2) + d^2/(2N)). metapsych reproduces metafor (exact J, LS variance with g).
So ``.g`` is matched by :func:`continuous.smd_esc`, and metapsych's g differs from ``.g`` by exactly the
ratio of the two corrections. For events, metapsyTools converts the log OR with the logit method *and*
applies the same J approximation (metafor's OR2DL does not); its SE equals ours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metapsych.effects import continuous
from metapsych.effects.compute import compute_effects

# the normalised Metapsy depression database (release 24.0.2), shared with the data-layer tests
DATA = Path(__file__).resolve().parents[1] / "fixtures" / "metapsy" / "metapsy-depression-psyctr.csv.gz"
TOL = 1e-6

# msd rows whose .g/.g_se do not follow from the row's own means/SDs/n under either formula, by
# (study, instrument) -> why. These are data findings: the database values were computed from other
# numbers than the ones now in the row (edited after calculation, or taken from another source).
MSD_DIFFERENT = {
    ("Rohde, 2014b", "k-sads"): "sign: .g = -g (arm1 mean is higher, yet .g says the therapy was better)",
    ("Newby, 2013", "phq-9"): ".g matches, .g_se does not (SE computed from other sample sizes)",
    ("Baker, 2010", "bdi-2"): ".g_se about 1.43x larger: SE computed from smaller n than n_arm1/n_arm2 (2 rows)",
    ("Arjadi, 2018", "phq-9"): ".g and .g_se from other means/n than in the row",
    ("Forsell, 2017", "epds"): ".g and .g_se from other numbers than in the row",
    ("Mueller-Weinitschke, 2023", "qids-c"): ".g 0.705 vs 0.787 from the row's means/SDs/n",
    ("Victor-Aigbodion, 2023", "bdi-2"): ".g 0.589 vs 3.95 from the row's means/SDs/n",
    ("Victor-Aigbodion, 2023", "zung"): "differs at 3e-5: inputs rounded after .g was computed",
    ("Eseadi, 2018", "bdi-2"): "differs at 1e-4: inputs rounded after .g was computed",
    ("Eseadi, 2022", "bdi-2"): "differs at 6e-5: inputs rounded after .g was computed",
}
# event rows whose .g/.log_rr have the opposite sign of what the event counts give
EVENTS_DIFFERENT = {("Kivi, 2014", "bdi-1"): "sign: .g and .log_rr negative although arm1 has the higher event rate"}


@pytest.fixture(scope="module")
def effects() -> pd.DataFrame:
    return compute_effects(pd.read_csv(DATA), measure="g")


def _rel(a: pd.Series, b: pd.Series) -> np.ndarray:
    return np.abs(a.to_numpy() - b.to_numpy()) / np.maximum(np.abs(b.to_numpy()), 1e-8)


def _keys(rows: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(rows["study"], rows["instrument"]))


def test_every_msd_row_uses_means(effects: pd.DataFrame) -> None:
    msd = effects[effects.outcome_type == "msd"]
    assert len(msd) == 810
    assert (msd.formula == "smd_from_means").all()


def test_esc_formula_reproduces_database_except_named_rows(effects: pd.DataFrame) -> None:
    msd = effects[effects.outcome_type == "msd"]
    esc = continuous.smd_esc(msd.mean_arm2, msd.sd_arm2, msd.n_arm2, msd.mean_arm1, msd.sd_arm1, msd.n_arm1)
    bad = (_rel(pd.Series(esc.yi), msd[".g"]) > TOL) | (_rel(pd.Series(np.sqrt(esc.vi)), msd[".g_se"]) > TOL)
    assert _keys(msd[bad]) == set(MSD_DIFFERENT)
    assert int(bad.sum()) == 11  # Baker, 2010 has two rows
    assert int((~bad).sum()) == 799


def test_metapsych_g_differs_from_database_by_the_correction_ratio(effects: pd.DataFrame) -> None:
    msd = effects[effects.outcome_type == "msd"]
    msd = msd[~np.array([k in MSD_DIFFERENT for k in zip(msd.study, msd.instrument)])]
    total = msd.n_arm1 + msd.n_arm2
    ratio = continuous.hedges_j(total - 2) / (1 - 3 / (4 * total - 9))
    np.testing.assert_allclose(msd.yi, msd[".g"] * ratio, rtol=1e-9, atol=1e-12)
    assert np.nanmax(_rel(msd.yi, msd[".g"])) < 2e-3  # the approximation error itself


def test_change_rows_reproduce_database(effects: pd.DataFrame) -> None:
    ch = effects[effects.outcome_type == "change"]
    assert len(ch) == 19 and (ch.formula == "smd_from_change").all()
    esc = continuous.smd_esc(
        ch.mean_change_arm2, ch.sd_change_arm2, ch.n_change_arm2,
        ch.mean_change_arm1, ch.sd_change_arm1, ch.n_change_arm1,
    )
    np.testing.assert_allclose(esc.yi, ch[".g"], rtol=TOL)
    np.testing.assert_allclose(np.sqrt(esc.vi), ch[".g_se"], rtol=TOL)


def test_precalculated_rows_pass_through(effects: pd.DataFrame) -> None:
    pre = effects[effects.formula == "smd_precalc_se"]
    assert len(pre) == 16
    np.testing.assert_allclose(pre.yi, pre[".g"], rtol=1e-12)
    np.testing.assert_allclose(pre.sei, pre[".g_se"], rtol=1e-12)


def test_event_rows_match_database_up_to_the_j_approximation(effects: pd.DataFrame) -> None:
    ev = effects[effects.formula.fillna("").str.startswith("smd_from_logor")]
    assert len(ev) == 54
    named = np.array([k in EVENTS_DIFFERENT for k in zip(ev.study, ev.instrument)])
    assert named.sum() == 1
    total = ev.totaln_arm1 + ev.totaln_arm2
    np.testing.assert_allclose(ev.sei, ev[".g_se"], rtol=TOL)
    ok = ev[~named]
    np.testing.assert_allclose(ok.yi * (1 - 3 / (4 * total[~named] - 9)), ok[".g"], rtol=TOL)
    bad = ev[named]
    np.testing.assert_allclose(-bad.yi * (1 - 3 / (4 * total[named] - 9)), bad[".g"], rtol=TOL)


def test_row_without_data_is_kept_with_a_reason(effects: pd.DataFrame) -> None:
    missing = effects[effects.yi.isna()]
    assert len(missing) == 1 and len(effects) == 900
    assert missing.study.iloc[0] == "Shaw, 1977"
    assert "sd_arm1" in missing.why_missing.iloc[0]
