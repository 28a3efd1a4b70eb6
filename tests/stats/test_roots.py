"""Brent's root finder agrees with scipy's brentq and never leaves its bracket."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from metapsych.stats.roots import brent_root

EPS = float(np.finfo(float).eps)
CASES = [
    (lambda x: x**3 - 2 * x - 5, 2.0, 3.0),
    (lambda x: math.cos(x) - x, 0.0, 1.0),
    (lambda x: math.exp(x) - 1e-10, -30.0, 5.0),
    (lambda x: (x - 1e-9) * 1e6, 0.0, 1.0),
    (lambda x: math.atan(x - 0.3), -100.0, 1e6),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_matches_brentq(case: int) -> None:
    f, a, b = CASES[case]
    ours = brent_root(f, a, b, xtol=1e-15, rtol=4 * EPS)
    assert ours == pytest.approx(brentq(f, a, b, xtol=1e-15, rtol=4 * EPS), rel=1e-14, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_root_of_a_monotone_cubic_inside_the_bracket(root: float, left: float, right: float) -> None:
    f = lambda x: (x - root) ** 3 + (x - root)  # noqa: E731 - one strictly increasing function per example
    x = brent_root(f, root - left, root + right, xtol=1e-12, rtol=4 * EPS)
    assert root - left <= x <= root + right
    assert abs(x - root) <= 1e-12 + 8 * EPS * abs(root)


def test_needs_a_sign_change() -> None:
    with pytest.raises(ValueError):
        brent_root(lambda x: x * x + 1, -1.0, 1.0)


def test_r_uniroot_stops_within_tol_of_the_root() -> None:
    """R's zeroin2 stop: within tol of the root (and exactly R's point; parity in test_random_grid_parity)."""
    from metapsych.stats.roots import r_uniroot

    for f, a, b in CASES:
        root = brentq(f, a, b, xtol=1e-15, rtol=4 * EPS)
        assert abs(r_uniroot(f, a, b, tol=1e-6) - root) <= 1e-6 + 4 * EPS * abs(root)
