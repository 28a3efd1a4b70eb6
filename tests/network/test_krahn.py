"""netmeta's Q decomposition on basic contrasts, against metafor (fixtures ``*-krahn.json`` from make_krahn.R)."""

from __future__ import annotations

import pytest

from metapsych.stats.network import fit_network, network_payload
from tests.network.fixtures import assert_close, columns, oracle

CASES = [("therapyformats", "cau"), ("random_multiarm", "cau"), ("netdata", "Placebo"),
         ("hasselblad1998", "no_contact"), ("senn2013", "placebo")]
RTOL = 1e-9
ATOL = 1e-12


@pytest.mark.parametrize(("name", "reference"), CASES)
def test_decomposition_matches_metafor(name: str, reference: str) -> None:
    expected = oracle(f"{name}-krahn")
    got = network_payload(fit_network(**columns(name), reference=reference, model="common"))
    assert_close(got["Q_within"], expected["Q_within"], RTOL, ATOL, what="Q_within")
    assert_close(got["Q_between"], expected["Q_between"], RTOL, ATOL, what="Q_between")
    dbt = got["design_by_treatment_random"]
    assert_close(dbt["tau2_within"], expected["tau2_within"], RTOL, ATOL, what="tau2_within")
    assert_close(dbt["Q"], expected["Q_between_random"], RTOL, ATOL, what="Q_between_random")
    designs = {d["design"]: d["Q"] for d in got["designs"]}
    assert set(designs) == set(expected["designs"])
    for design, q in expected["designs"].items():
        assert_close(designs[design], q, RTOL, ATOL, what=design)


@pytest.mark.parametrize(("name", "reference"), CASES[1:])
def test_consistent_multi_arm_studies_add_up(name: str, reference: str) -> None:
    """With consistent multi-arm studies both ways of entering them agree: Q_total = Q_within + Q_between."""
    got = network_payload(fit_network(**columns(name), reference=reference, model="common"))
    assert got["Q_within"] + got["Q_between"] == pytest.approx(got["Q_total"], rel=1e-9, abs=1e-12)
