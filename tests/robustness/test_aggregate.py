"""aggregate() against metafor aggregate.escalc(struct="CS") for several rho."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metapsych.stats.aggregate import aggregate
from robustness_ref import assert_close, load_csv, load_json


@pytest.mark.parametrize("name", ["chernobyl", "clustered_random"])
@pytest.mark.parametrize("rho", [0.6, 0.0, 0.9])
def test_matches_metafor(name: str, rho: float) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.aggregate.json")[f"rho_{rho:g}"]
    y, v, labels = aggregate(d["yi"], d["vi"], d["study"], rho=rho)
    assert labels == ref["cluster"]
    assert_close(y, ref["yi"], rtol=1e-10)
    assert_close(v, ref["vi"], rtol=1e-10)


def test_singletons_pass_through() -> None:
    y, v, labels = aggregate(np.array([0.1, 0.2]), np.array([0.01, 0.02]), ["a", "b"])
    assert labels == ["a", "b"]
    assert_close(y, [0.1, 0.2], rtol=0)
    assert_close(v, [0.01, 0.02], rtol=0)


def test_invalid_rho() -> None:
    with pytest.raises(ValueError, match="rho"):
        aggregate(np.array([0.1]), np.array([0.01]), ["a"], rho=1.5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 2), st.floats(0.01, 1)), min_size=2, max_size=6),
       st.floats(0, 0.95))
def test_combined_lies_within_range_and_variance_not_below_best(pairs, rho) -> None:
    y = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    if rho == 0 or np.ptp(v) == 0:
        (ya,), (va,), _ = aggregate(y, v, ["c"] * y.size, rho=rho)
        assert y.min() - 1e-9 <= ya <= y.max() + 1e-9
    (ya,), (va,), _ = aggregate(y, v, ["c"] * y.size, rho=rho)
    assert va <= v.max() + 1e-12
