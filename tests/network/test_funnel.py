"""Comparison-adjusted funnel and its Egger test, against metafor (fixture from make_funnel.R)."""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats.network_funnel import comparison_adjusted_funnel
from tests.network.fixtures import assert_close, columns, oracle

BOOK_ORDER = ["wlc", "cau", "ind", "grp", "tel", "ush", "gsh"]  # Harrer et al. 2021, ch. 12.2: old to new


def _funnel(order: list[str]):
    c = columns("therapyformats")
    return comparison_adjusted_funnel(c["study"], c["treat1"], c["treat2"], c["yi"], c["vi"], order)


def test_matches_metafor_regtest() -> None:
    expected = oracle("therapyformats-funnel")
    got = _funnel(BOOK_ORDER)
    np.testing.assert_allclose(got.yi_adj, expected["yi_adj"], rtol=0, atol=1e-12)
    assert got.egger_df == expected["df"]
    assert_close(got.egger_statistic, expected["statistic"], 1e-9)
    assert_close(got.egger_p, expected["p_value"], 1e-9)


def test_orientation_follows_the_order() -> None:
    got = _funnel(BOOK_ORDER)
    assert all(BOOK_ORDER.index(c.split(":")[0]) < BOOK_ORDER.index(c.split(":")[1]) for c in got.comparison)
    flipped = _funnel(BOOK_ORDER[::-1])
    np.testing.assert_allclose(flipped.yi_adj, -got.yi_adj, atol=1e-15)
    assert flipped.egger_p == pytest.approx(got.egger_p, rel=1e-12)


@pytest.mark.parametrize("order", [["wlc", "cau"], [*BOOK_ORDER, "wlc"], [*BOOK_ORDER[:-1], "other"]])
def test_order_must_list_every_treatment_once(order: list[str]) -> None:
    with pytest.raises(ValueError, match="every treatment once"):
        _funnel(order)
