"""Parity with metafor's contrast-based rma.mv network model (fixtures from nma_ref.R)."""

from __future__ import annotations

import pytest

from metapsych.stats.network import fit_network, network_payload
from tests.network.fixtures import assert_close, columns, oracle

CASES = [
    # (input csv, oracle json, reference, small values, level)
    ("senn2013", "senn2013", "placebo", "good", 0.95),
    ("hasselblad1998", "hasselblad1998", "no_contact", "bad", 0.95),
    ("netdata", "netdata", "Placebo", "bad", 0.95),
    ("random_multiarm", "random_multiarm", "cau", "bad", 0.95),
    ("random_multiarm", "random_multiarm-wl90", "wl", "bad", 0.90),
    ("disconnected_abc", "disconnected_abc", "C", "bad", 0.95),
    ("disconnected_de", "disconnected_de", "E", "bad", 0.95),
    ("star", "star", "care-as-usual", "bad", 0.95),
]
RTOL = 1e-6


def _compare(payload: dict, expected: dict) -> None:
    assert_close(payload["tau2"], expected["tau2"], RTOL, what="tau2")
    assert_close(payload["Q_total"], expected["Q_total"], RTOL, what="Q_total")
    assert payload["Q_total_df"] == expected["Q_df"]
    assert set(payload["estimates"]) == set(expected["estimates"])
    for treat, est in expected["estimates"].items():
        for key in ("estimate", "se", "ci_lower", "ci_upper"):
            assert_close(payload["estimates"][treat][key], est[key], RTOL, what=f"{treat} {key}")
        assert_close(payload["estimates"][treat]["p_value"], est["pval"], RTOL, atol=1e-12, what=f"{treat} p")
    for treat, p in expected["p_scores"].items():
        assert_close(payload["p_scores"][treat], p, RTOL, what=f"P-score {treat}")
    for t1, row in expected["league"].items():
        for t2, cell in row.items():
            for key in ("estimate", "se", "ci_lower", "ci_upper"):
                assert_close(payload["league"][t1][t2][key], cell[key], RTOL, what=f"league {t1}-{t2} {key}")


@pytest.mark.parametrize(("data", "fixture", "reference", "small", "level"), CASES)
@pytest.mark.parametrize("model", ["common", "random"])
def test_matches_rma_mv(data: str, fixture: str, reference: str, small: str, level: float, model: str) -> None:
    fit = fit_network(**columns(data), reference=reference, model=model, small_values=small, level=level)
    _compare(network_payload(fit), oracle(fixture)[model])


def test_common_q_is_the_same_under_random() -> None:
    common = network_payload(fit_network(**columns("senn2013"), reference="placebo", model="common"))
    random = network_payload(fit_network(**columns("senn2013"), reference="placebo", model="random"))
    assert random["Q_total"] == pytest.approx(common["Q_total"], rel=1e-12)
    assert random["tau2_reml"] == pytest.approx(random["tau2"], rel=1e-15)
