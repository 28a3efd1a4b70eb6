"""Cumulative meta-analysis against metafor cumul(fit, order=year)."""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats.cumulative import cumulative
from robustness_ref import assert_close, load_csv, load_json


@pytest.mark.parametrize("name", ["bcg", "random14"])
@pytest.mark.parametrize("key", ["REML_z", "REML_knha", "DL_z", "DL_knha"])
def test_cumul(name: str, key: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.cumul.json")[key]
    method, test = key.split("_")
    c = cumulative(d["yi"], d["vi"], d["year"], estimator=method, test=test)
    assert [d["study"][i] for i in c.order] == ref["study"]
    for ours, k in [(c.estimate, "estimate"), (c.se, "se"), (c.p_value, "pval"), (c.ci_lower, "ci.lb"),
                    (c.ci_upper, "ci.ub"), (c.Q, "Q"), (c.I2, "I2")]:
        assert_close(ours, ref[k])
    assert_close(c.tau2, ref["tau2"], atol=1e-10)


def test_last_step_is_the_full_model() -> None:
    d = load_csv("bcg")
    c = cumulative(d["yi"], d["vi"], np.zeros(d["yi"].size))
    assert list(c.order) == list(range(d["yi"].size))
    assert c.estimate.size == d["yi"].size
