"""Brent's root finder for a continuous scalar function with a sign change (scipy's brentq, without its import).

``scipy.optimize`` costs ~0.4 s to import, more than a whole incremental report run can spend on it; this is
Brent's (1973) ``zero`` algorithm: inverse quadratic interpolation or secant steps, safeguarded by bisection,
so it never leaves the bracket and converges at least as fast as bisection.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = float(np.finfo(float).eps)


def brent_root(f: Callable[[float], float], a: float, b: float, xtol: float = 2e-12, rtol: float = 4 * EPS,
               maxiter: int = 500) -> float:
    """x in [a, b] with f(x) = 0 to within xtol + rtol * |x|; f(a) and f(b) must differ in sign."""
    fa, fb = f(a), f(b)
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    if (fa > 0) == (fb > 0):
        raise ValueError("f(a) and f(b) must have opposite signs")
    c, fc = a, fa
    d = e = b - a
    for _ in range(maxiter):
        if (fb > 0) == (fc > 0):  # keep the root between b and c
            c, fc = a, fa
            d = e = b - a
        if abs(fc) < abs(fb):  # b is the best estimate
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol = 2.0 * rtol * abs(b) + 0.5 * xtol
        m = 0.5 * (c - b)
        if abs(m) <= tol or fb == 0.0:
            return b
        d, e = _brent_step(a, b, c, fa, fb, fc, d, e, m, tol)
        a, fa = b, fb
        b += d if abs(d) > tol else (tol if m > 0 else -tol)
        fb = f(b)
    raise ArithmeticError(f"no root found to the tolerance in {maxiter} iterations")


def _brent_step(a: float, b: float, c: float, fa: float, fb: float, fc: float, d: float, e: float, m: float,
                tol: float) -> tuple[float, float]:
    """The next step (d) and the step before it (e): interpolation when it is safe, else bisection."""
    if abs(e) < tol or abs(fa) <= abs(fb):
        return m, m
    s = fb / fa
    if a == c:  # secant
        p, q = 2.0 * m * s, 1.0 - s
    else:  # inverse quadratic interpolation
        q, r = fa / fc, fb / fc
        p = s * (2.0 * m * q * (q - r) - (b - a) * (r - 1.0))
        q = (q - 1.0) * (r - 1.0) * (s - 1.0)
    if p > 0:
        q = -q
    else:
        p = -p
    if 2.0 * p < 3.0 * m * q - abs(tol * q) and p < abs(0.5 * e * q):
        return p / q, d
    return m, m


def r_uniroot(f: Callable[[float], float], lower: float, upper: float, tol: float, maxiter: int = 1000) -> float:
    """R's ``uniroot(f, c(lower, upper), tol = tol)``: its zeroin2 (Brent) step for step, so that the point
    where it stops -- anywhere within ``tol`` of the root -- is R's. metafor finds PM tau2 this way; where
    ``tol`` is not small next to the root, that point, not the exact root, is metafor's answer.
    """
    a, b = lower, upper
    fa, fb = f(a), f(b)
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2.0 * EPS * abs(b) + tol / 2.0
        new_step = (c - b) / 2.0
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            new_step = _zeroin_interpolation(a, b, c, fa, fb, fc, prev_step, tol_act, new_step)
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise ArithmeticError(f"uniroot: no convergence in {maxiter} iterations")


def _zeroin_interpolation(a: float, b: float, c: float, fa: float, fb: float, fc: float, prev_step: float,
                          tol_act: float, bisection: float) -> float:
    """zeroin2's secant or inverse quadratic step, if it stays well inside the bracket; else ``bisection``."""
    cb = c - b
    if a == c:
        t1 = fb / fa
        p, q = cb * t1, 1.0 - t1
    else:
        q, t1, t2 = fa / fc, fb / fc, fb / fa
        p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
        q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
    if p > 0:
        q = -q
    else:
        p = -p
    if p < 0.75 * cb * q - abs(tol_act * q) / 2.0 and p < abs(prev_step * q / 2.0):
        return p / q
    return bisection
