"""Multi-arm handling, disconnected and star networks, input checks and invariances of fit_network."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metapsych.stats import rma
from metapsych.stats.network import fit_network, network_payload
from metapsych.stats.network_data import NetworkDataError
from tests.network.fixtures import assert_close, columns, oracle


def _gls(rows: list[tuple[str, str, str, float, float]], arm_var: dict[tuple[str, str], float], ref: str,
         treats: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Independent GLS: each study's contrasts against its last arm, Cov(a-b, c-b) = var(b)."""
    ys, xs, blocks = [], [], []
    others = [t for t in treats if t != ref]
    for study in dict.fromkeys(r[0] for r in rows):
        arms = list(dict.fromkeys(t for r in rows if r[0] == study for t in r[1:3]))
        base = arms[-1]
        eff = {}
        for _, a, b, y, _ in (r for r in rows if r[0] == study):
            eff[(a, b)], eff[(b, a)] = y, -y
        block = np.full((len(arms) - 1, len(arms) - 1), arm_var[(study, base)])
        for i, a in enumerate(arms[:-1]):
            ys.append(eff[(a, base)])
            xs.append([(t == a) - (t == base) for t in others])
            block[i, i] += arm_var[(study, a)]
        blocks.append(block)
    v = np.zeros((len(ys), len(ys)))
    pos = 0
    for b in blocks:
        v[pos:pos + len(b), pos:pos + len(b)] = b
        pos += len(b)
    x, w = np.array(xs, dtype=float), np.linalg.inv(v)
    cov = np.linalg.inv(x.T @ w @ x)
    return cov @ x.T @ w @ np.array(ys), cov


def test_three_arm_trial_is_gls_with_shared_arm_covariance() -> None:
    arms = {("t3", "cbt"): (0.8, 0.02), ("t3", "ipt"): (0.5, 0.03), ("t3", "wl"): (0.0, 0.025),
            ("t1", "cbt"): (0.7, 0.04), ("t1", "wl"): (0.1, 0.05), ("t2", "ipt"): (0.2, 0.02),
            ("t2", "cbt"): (0.6, 0.03)}
    rows = []
    for study in ("t1", "t2", "t3"):
        names = [t for (s, t) in arms if s == study]
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                (ya, va), (yb, vb) = arms[(study, names[i])], arms[(study, names[j])]
                rows.append((study, names[i], names[j], ya - yb, va + vb))
    fit = fit_network(*zip(*rows), reference="wl", model="common")
    expected, cov = _gls(rows, {k: v for k, (_, v) in arms.items()}, "wl", ["cbt", "ipt", "wl"])
    for i, treat in enumerate(["cbt", "ipt"]):
        est, se = fit.contrast(treat, "wl")
        assert_close(est, expected[i], 1e-12)
        assert_close(se, np.sqrt(cov[i, i]), 1e-12)
    assert fit.multi_arm_studies == ("t3",)


@pytest.mark.parametrize("estimator", ["DL", "REML"])
def test_two_treatments_reduce_to_a_pairwise_meta_analysis(estimator: str) -> None:
    rng = np.random.default_rng(3)
    k = 9
    yi, vi = rng.normal(0.4, 0.3, k), rng.uniform(0.01, 0.1, k)
    fit = fit_network([f"s{i}" for i in range(k)], ["cbt"] * k, ["wl"] * k, yi, vi, reference="wl",
                      tau2_method=estimator)
    uni = rma.fit(yi, vi, estimator=estimator)
    assert_close(fit.tau2, uni.tau2, 1e-8)
    est, se = fit.contrast("cbt", "wl")
    assert_close(est, uni.estimate, 1e-8)
    assert_close(se, float(uni.se[0]), 1e-8)
    assert_close(fit.q.Q_total, uni.Q, 1e-12)


def test_disconnected_network_is_analysed_per_part() -> None:
    fit = fit_network(**columns("disconnected"), reference="C")
    payload = network_payload(fit)
    assert fit.treatments == ("A", "B", "C")
    assert [c["treatments"] for c in payload["components"]] == [["A", "B", "C"], ["D", "E"]]
    assert any("disconnected" in note for note in payload["notes"])
    expected = oracle("disconnected_abc")["random"]
    for treat, est in expected["estimates"].items():
        assert_close(payload["estimates"][treat]["estimate"], est["estimate"], 1e-6)
    other = payload["components"][1]["fit"]
    assert other["reference"] == "D"  # most connected (tie broken alphabetically), with a note
    assert any("disconnected from 'C'" in note for note in other["notes"])
    expected_de = oracle("disconnected_de")["random"]["league"]
    assert_close(other["league"]["D"]["E"]["estimate"], expected_de["D"]["E"]["estimate"], 1e-6)
    assert_close(other["league"]["D"]["E"]["se"], expected_de["D"]["E"]["se"], 1e-6)


def test_reference_in_a_smaller_part_makes_that_part_the_main_fit() -> None:
    fit = fit_network(**columns("disconnected"), reference="E", model="common")
    assert fit.treatments == ("D", "E")
    assert fit.others[0].treatments == ("A", "B", "C")


def test_star_network_has_no_inconsistency_test() -> None:
    payload = network_payload(fit_network(**columns("star"), reference="care-as-usual"))
    assert payload["inconsistency_testable"] is False
    assert payload["Q_between_df"] == 0 and payload["Q_between_p"] is None
    assert all(row["indirect"] is None and row["p_value"] is None for row in payload["split"])
    assert all(row["prop_direct"] == pytest.approx(1.0) for row in payload["split"])
    assert any("no closed loop" in note for note in payload["notes"])
    assert payload["disagreements"] == []


def test_graph_counts_trials_and_participants() -> None:
    payload = network_payload(fit_network(**columns("random_multiarm"), reference="cau"))
    nodes = {n["treatment"]: n for n in payload["graph"]["nodes"]}
    rows = columns("random_multiarm")
    cbt_trials = {s for s, a, b in zip(rows["study"], rows["treat1"], rows["treat2"]) if "cbt" in (a, b)}
    assert nodes["cbt"]["n_trials"] == len(cbt_trials)
    assert nodes["cbt"]["n_participants"] > 0
    edges = {(e["treat1"], e["treat2"]): e["n_trials"] for e in payload["graph"]["edges"]}
    assert edges[("cau", "cbt")] == 4  # three two-arm trials and one three-arm trial
    assert len(payload["multi_arm_studies"]) == 4


BAD = [
    ([("s", "a", "b", 0.1, 0.1), ("s", "a", "c", 0.2, 0.1)], "treat2", "3 arms but 2 contrasts"),
    ([("s", "a", "b", 0.1, 0.1), ("s", "b", "a", 0.2, 0.1)], "treat1", "same comparison twice"),
    ([("s", "a", "b", 0.1, 0.1), ("s", "a", "c", 0.2, 0.1), ("s", "b", "c", 0.3, 0.1)], "yi", "inconsistent"),
    ([("s", "a", "b", 0.1, 0.1), ("s", "a", "c", 0.2, 0.1), ("s", "b", "c", 0.1, 0.5)], "vi", "variances"),
    ([("s", "a", "b", 0.1, 0.0)], "vi", "positive"),
    ([("s", "a", "a", 0.1, 0.1)], "treat2", "itself"),
    ([("s", "a", "b", float("nan"), 0.1)], "yi", "finite"),
]


@pytest.mark.parametrize(("rows", "field", "text"), BAD)
def test_bad_rows_name_the_field(rows: list, field: str, text: str) -> None:
    with pytest.raises(NetworkDataError) as info:
        fit_network(*zip(*rows), reference="a")
    assert info.value.field == field
    assert text in info.value.problem
    assert info.value.rows


def test_unknown_reference_and_options() -> None:
    cols = columns("star")
    with pytest.raises(ValueError, match="not a treatment"):
        fit_network(**cols, reference="placebo")
    with pytest.raises(ValueError, match="model"):
        fit_network(**cols, reference="cbt", model="fixed")  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), flip=st.lists(st.booleans(), min_size=34, max_size=34),
       reference=st.sampled_from(["cau", "wl", "cbt", "sup"]))
def test_invariant_to_row_order_orientation_and_reference(seed: int, flip: list[bool], reference: str) -> None:
    cols = columns("random_multiarm")
    base = network_payload(fit_network(**cols, reference="cau"))
    order = np.random.default_rng(seed).permutation(len(cols["yi"]))
    t1 = [cols["treat2"][i] if flip[i] else cols["treat1"][i] for i in order]
    t2 = [cols["treat1"][i] if flip[i] else cols["treat2"][i] for i in order]
    yi = [-cols["yi"][i] if flip[i] else cols["yi"][i] for i in order]
    vi = [cols["vi"][i] for i in order]
    study = [cols["study"][i] for i in order]
    other = network_payload(fit_network(study, t1, t2, yi, vi, reference=reference))
    assert other["tau2"] == pytest.approx(base["tau2"], rel=1e-7)
    assert other["Q_total"] == pytest.approx(base["Q_total"], rel=1e-10)
    for a, row in base["league"].items():
        for b, cell in row.items():
            assert other["league"][a][b]["estimate"] == pytest.approx(cell["estimate"], rel=1e-6, abs=1e-9)
            assert other["league"][a][b]["se"] == pytest.approx(cell["se"], rel=1e-6)
            assert other["league"][b][a]["estimate"] == pytest.approx(-cell["estimate"], rel=1e-6, abs=1e-9)
    assert sum(other["p_scores"].values()) == pytest.approx(len(other["treatments"]) / 2, rel=1e-12)


def test_complete_multiarm_is_exact_for_mean_differences_with_equal_sds() -> None:
    from metapsych.stats.network_data import complete_multiarm

    sd, n, mean = 2.0, {"a": 30, "b": 40, "c": 50}, {"a": 1.0, "b": 0.5, "c": 0.0}

    def var(x: str, y: str) -> float:
        return sd**2 / n[x] + sd**2 / n[y]

    rows = complete_multiarm(["s", "s", "t"], ["a", "b", "a"], ["c", "c", "b"],
                             [mean["a"] - mean["c"], mean["b"] - mean["c"], 0.3], [var("a", "c"), var("b", "c"), 0.1],
                             [30, 40, 25], [50, 50, 25])
    assert rows.treat1[3:] == ["a"] and rows.treat2[3:] == ["b"]
    assert rows.yi[3] == pytest.approx(0.5)
    assert rows.vi[3] == pytest.approx(var("a", "b"), rel=1e-12)
    assert rows.source == [0, 1, 2, 0]
    assert len(rows.notes) == 1 and "'s'" in rows.notes[0]
    fit = fit_network(rows.study, rows.treat1, rows.treat2, rows.yi, rows.vi, reference="c", notes=rows.notes)
    assert rows.notes[0] in fit.notes
