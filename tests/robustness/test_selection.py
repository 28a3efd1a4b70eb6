"""Step-function selection model against metafor selmodel(type="stepfun", steps=0.025), to 1e-4."""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats.selection import step_selection_model
from robustness_ref import assert_close, load_csv, load_json


@pytest.mark.parametrize("name", ["thirdwave", "random14"])
def test_matches_metafor(name: str) -> None:
    d = load_csv(name)
    ref = load_json(f"{name}.selmodel.json")["REML"]
    s = step_selection_model(d["yi"], d["vi"])
    assert list(s.k_per_interval) == ref["ptable_k"]
    assert_close([s.estimate, s.se, s.ci_lower, s.ci_upper, s.p_value], [ref["estimate"], ref["se"], ref["ci.lb"],
                 ref["ci.ub"], ref["pval"]], rtol=1e-4)
    assert_close(s.delta, ref["delta"], rtol=1e-4)
    assert_close(s.delta_se[1:], ref["se.delta"][1:], rtol=1e-4)
    assert_close([s.loglik, s.lrt_p], [ref["ll"], ref["LRTp"]], rtol=1e-4)
    assert_close(s.tau2, ref["tau2"], rtol=1e-4, atol=1e-7)


def test_empty_interval_is_refused() -> None:
    """dat.bcg: every one-sided p-value is above 0.025 (all effects negative); metafor's fit is degenerate."""
    d = load_csv("bcg")
    with pytest.raises(ValueError, match="not identified"):
        step_selection_model(d["yi"], d["vi"])


def test_no_selection_gives_delta_near_one() -> None:
    rng = np.random.default_rng(3)
    v = rng.uniform(0.01, 0.05, 60)
    y = 0.4 + rng.normal(0, np.sqrt(v + 0.02))
    s = step_selection_model(y, v)
    assert s.lrt_p > 0.01
    assert np.isfinite(s.se)
