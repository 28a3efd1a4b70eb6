"""diagnostics_payload: the pool --diagnostics contract keys, parity with metafor, edge cases, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from metapsych.analysis.diagnostics import diagnostics_payload
from robustness_ref import FIXTURES, assert_close, load_csv, load_json

CONTRACT = {
    "leave_one_out": {"study", "estimate", "ci_lower", "ci_upper", "tau2", "I2", "Q"},
    "influence": {"study", "rstudent", "dffits", "cooks_d", "cov_r", "hat", "weight", "influential"},
    "egger": {"statistic", "p_value", "limit_estimate"},
    "rank_test": {"tau", "p_value"},
    "trim_and_fill": {"k0", "side", "estimate", "ci_lower", "ci_upper"},
    "fail_safe_n": {"rosenthal", "orwin"},
}
CLUSTER_CONTRACT = {
    "three_level": {"estimate", "se", "ci_lower", "ci_upper", "sigma2", "Q"},
    "robust": {"estimate", "se", "ci_lower", "ci_upper", "df"},
}


def test_contract_keys_and_parity_thirdwave() -> None:
    d = load_csv("thirdwave")
    ref = load_json("thirdwave.metafor.json")
    p = diagnostics_payload(d["yi"], d["vi"], d["study"], None)
    json.dumps(p, allow_nan=False)
    for key, fields in CONTRACT.items():
        rows = p[key] if isinstance(p[key], list) else [p[key]]
        assert all(fields <= set(r) for r in rows), key
    loo = ref["leave1out"]["REML"]
    assert [r["study"] for r in p["leave_one_out"]] == d["study"]
    assert_close([r["estimate"] for r in p["leave_one_out"]], loo["estimate"])
    assert_close([r["Q"] for r in p["leave_one_out"]], loo["Q"])
    inf = ref["influence"]["REML"]
    assert_close([r["cooks_d"] for r in p["influence"]], inf["cook.d"])
    assert_close([r["weight"] for r in p["influence"]], inf["weight"])
    assert [r["influential"] for r in p["influence"]] == inf["inf_flag"]
    eg = ref["regtest"]["rma_REML_sei"]
    assert_close([p["egger"]["statistic"], p["egger"]["p_value"], p["egger"]["limit_estimate"]],
                 [eg["zval"], eg["pval"], eg["est"]])
    assert_close([p["rank_test"]["tau"], p["rank_test"]["p_value"]],
                 [ref["ranktest"]["REML"]["tau"], ref["ranktest"]["REML"]["pval"]])
    tf = ref["trimfill"]["REML_L0"]
    assert (p["trim_and_fill"]["k0"], p["trim_and_fill"]["side"]) == (tf["k0"], tf["side"])
    assert_close([p["trim_and_fill"]["estimate"], p["trim_and_fill"]["ci_lower"]], [tf["b"], tf["ci.lb"]])
    assert p["fail_safe_n"]["rosenthal"] == ref["fsn"]["Rosenthal"]["fsnum"]
    assert p["fail_safe_n"]["orwin"] == ref["fsn"]["Orwin"]["fsnum"]
    assert p["selection_model"] is not None and p["pet_peese"] is not None
    assert "three_level" not in p


def test_knha_egger_uses_knha_fit() -> None:
    d = load_csv("bcg")
    ref = load_json("bcg.metafor.json")["regtest"]["rma_REML_knha_sei"]
    p = diagnostics_payload(d["yi"], d["vi"], d["study"], None, knha=True)
    assert_close([p["egger"]["statistic"], p["egger"]["p_value"]], [ref["zval"], ref["pval"]])
    assert p["egger"]["df"] == ref["df"]


@pytest.mark.parametrize("name", ["chernobyl", "clustered_random"])
def test_cluster_keys_match_rma_mv(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.rma_mv.json")["three_level_refined"]
    p = diagnostics_payload(d["yi"], d["vi"], d["study"], d["study"])
    json.dumps(p, allow_nan=False)
    for key, fields in CLUSTER_CONTRACT.items():
        assert fields <= set(p[key])
    t = p["three_level"]
    assert_close([t["estimate"], t["se"], t["ci_lower"], t["ci_upper"], t["Q"]],
                 [ref["b"], ref["se"], ref["ci.lb"], ref["ci.ub"], ref["QE"]])
    assert_close(t["sigma2"], ref["sigma2"], rtol=1e-7)
    r, rr = p["robust"], ref["robust_CR1_adjust"]
    assert_close([r["estimate"], r["se"], r["ci_lower"], r["ci_upper"], r["df"]],
                 [rr["b"], rr["se"], rr["ci.lb"], rr["ci.ub"], rr["df"]])
    assert p["robust_cr2"]["method"] == "CR2"


def test_single_cluster_gives_a_message_not_nan() -> None:
    d = load_csv("random14")
    p = diagnostics_payload(d["yi"], d["vi"], d["study"], ["one"] * d["yi"].size)
    json.dumps(p, allow_nan=False)
    assert p["robust"]["se"] is None
    assert "at least two clusters" in p["robust"]["message"]
    assert p["three_level"]["estimate"] is not None


def test_small_k_nulls_bias_keys_with_note() -> None:
    p = diagnostics_payload([0.1, 0.5, 0.3, 0.2], [0.01, 0.02, 0.03, 0.02], ["a", "b", "c", "d"], None)
    for key in ("egger", "rank_test", "trim_and_fill", "fail_safe_n", "selection_model", "pet_peese"):
        assert p[key] is None
    assert "k >= 10" in p["bias_note"]
    assert len(p["leave_one_out"]) == 4


def test_two_studies_have_no_case_diagnostics() -> None:
    p = diagnostics_payload([0.1, 0.5], [0.01, 0.02], ["a", "b"], None)
    assert p["leave_one_out"] is None and p["influence"] is None
    assert "at least 3" in p["influence_note"]


def test_every_study_an_outlier_candidate() -> None:
    y = [-2.0, -2.1, -1.9, 2.0, 2.1, 1.9]
    p = diagnostics_payload(y, [0.001] * 6, list("abcdef"), None)
    assert p["outliers"] == list("abcdef")


def test_cumulative_by_year() -> None:
    d = load_csv("bcg")
    ref = load_json("bcg.cumul.json")["REML_z"]
    p = diagnostics_payload(d["yi"], d["vi"], d["study"], None, year=d["year"])
    assert [r["study"] for r in p["cumulative"]] == ref["study"]
    assert_close([r["estimate"] for r in p["cumulative"]], ref["estimate"])


def test_pool_cli_diagnostics_with_cluster(tmp_path: Path) -> None:
    from metapsych.cli import app

    src = FIXTURES / "chernobyl.csv"
    with src.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = tmp_path / "clustered.csv"
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["study", "cluster", "yi", "vi"])
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({"study": f"{r['study']} #{i}", "cluster": r["study"], "yi": r["yi"], "vi": r["vi"]})
    res = CliRunner().invoke(app, ["pool", str(out), "--json", "--diagnostics"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    ref = load_json("chernobyl.rma_mv.json")["three_level_refined"]
    assert_close(payload["three_level"]["estimate"], ref["b"])
    assert_close(payload["robust"]["se"], ref["robust_CR1_adjust"]["se"])
    assert {"leave_one_out", "influence", "egger", "rank_test", "trim_and_fill", "fail_safe_n"} <= set(payload)
    assert np.isfinite(payload["egger"]["statistic"])


def test_blank_cluster_label_is_an_input_error() -> None:
    from metapsych.errors import InputError

    with pytest.raises(InputError, match=r"row\(s\) 2"):
        diagnostics_payload([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], None, ["a", " ", "b"])


def test_three_level_is_the_z_model_also_with_knha() -> None:
    d = load_csv("clustered_random")
    ref = load_json("clustered_random.rma_mv.json")["three_level_refined"]
    p = diagnostics_payload(d["yi"], d["vi"], d["study"], d["study"], knha=True)
    assert p["three_level"]["test"] == "z" and p["three_level"]["df"] is None
    assert_close([p["three_level"]["ci_lower"], p["three_level"]["p_value"]], [ref["ci.lb"], ref["pval"]])
