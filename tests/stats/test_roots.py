"""R's uniroot (zeroin2) agrees with scipy's brentq to the tolerance and never leaves its bracket."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from metapsych.stats.roots import uniroot

EPS = float(np.finfo(float).eps)
CASES = [
    (lambda x: x**3 - 2 * x - 5, 2.0, 3.0),
    (lambda x: math.cos(x) - x, 0.0, 1.0),
    (lambda x: math.exp(x) - 1e-10, -30.0, 5.0),
    (lambda x: (x - 1e-9) * 1e6, 0.0, 1.0),
    (lambda x: math.atan(x - 0.3), -100.0, 1e6),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("tol", [1e-15, 1e-6])
def test_stops_within_tol_of_brentqs_root(case: int, tol: float) -> None:
    f, a, b = CASES[case]
    root = brentq(f, a, b, xtol=1e-15, rtol=4 * EPS)
    assert abs(uniroot(f, a, b, tol=tol) - root) <= tol + 4 * EPS * abs(root)


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_root_of_a_monotone_cubic_inside_the_bracket(root: float, left: float, right: float) -> None:
    f = lambda x: (x - root) ** 3 + (x - root)  # noqa: E731 - one strictly increasing function per example
    x = uniroot(f, root - left, root + right, tol=1e-12)
    assert root - left <= x <= root + right
    assert abs(x - root) <= 1e-12 + 8 * EPS * abs(root)


def test_needs_a_sign_change() -> None:
    with pytest.raises(ValueError):
        uniroot(lambda x: x * x + 1, -1.0, 1.0, tol=1e-12)
