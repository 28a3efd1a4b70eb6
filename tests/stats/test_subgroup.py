"""Subgroup tests: the O(k) common-tau2 moderator test equals the treatment-coded meta-regression."""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats.metareg import meta_regression
from metapsych.stats.subgroup import between_test, subgroup_analysis

from .oracle import close


@pytest.mark.parametrize("estimator", ["REML", "DL", "ML", "PM", "EB", "HE", "SJ", "EE"])
@pytest.mark.parametrize("test", ["z", "knha", "adhoc"])
def test_common_tau2_equals_factor_regression(estimator: str, test: str) -> None:
    rng = np.random.default_rng(3)
    labels = rng.choice(["b", "a", "C", "d", "e"], 30)
    vi = rng.uniform(0.01, 0.2, 30)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05)) + (labels == "d") * 0.4
    result = subgroup_analysis(yi, vi, list(labels), estimator=estimator, test=test)
    reg = meta_regression(yi, vi, {"g": list(labels)}, estimator=estimator, test=test).fit
    assert close(result.common.QM, reg.QM) and close(result.common.p_value, reg.QM_p)
    assert close(result.common.tau2, reg.tau2)
    assert result.common.df == 4 and result.levels == ("a", "b", "C", "d", "e")


def test_between_test_needs_two_finite_groups() -> None:
    assert between_test([0.1], [0.1]).message == "fewer than two subgroups"
    assert "no finite" in between_test([0.1, float("nan")], [0.1, 0.2]).message


def test_numeric_labels_sort_numerically() -> None:
    res = subgroup_analysis(np.arange(6.0), np.ones(6), ["10", "2", "1", "10", "2", "1"], estimator="DL")
    assert res.levels == ("1", "2", "10")
    assert [f.k for f in res.fits.values()] == [2, 2, 2]
