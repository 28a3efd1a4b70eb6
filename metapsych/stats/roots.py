"""R's ``uniroot``: Brent's root finder, step for step as R's zeroin2 (scipy's brentq, without its import).

``scipy.optimize`` costs ~0.4 s to import, more than a whole incremental report run can spend on it. Brent's
(1973) ``zero`` takes inverse quadratic interpolation or secant steps, safeguarded by bisection, so it never
leaves the bracket. Following R's zeroin2 exactly matters where metafor uses ``uniroot`` with a tolerance that
is not small next to the root (PM tau2 near zero): there the point where it stops is metafor's answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = float(np.finfo(float).eps)


def uniroot(f: Callable[[float], float], lower: float, upper: float, tol: float, maxiter: int = 1000) -> float:
    """R's ``uniroot(f, c(lower, upper), tol = tol)``: a point within ``tol`` (plus 2 eps |x|) of the root;
    f(lower) and f(upper) must differ in sign."""
    a, b = lower, upper
    fa, fb = f(a), f(b)
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    if (fa > 0) == (fb > 0):
        raise ValueError("f(lower) and f(upper) must have opposite signs")
    c, fc = a, fa
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
