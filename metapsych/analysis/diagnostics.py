"""The robustness payload of one pooled analysis: leave-one-out, influence, publication bias and, when
effects are clustered within trials, the three-level and cluster-robust models.

``diagnostics_payload`` returns the keys of the ``pool --diagnostics`` contract (DESIGN.md section 5 and
the robustness issue) plus extras the report uses. Every value is JSON-safe (float, int, str, bool or
None, never NaN). A part that cannot be computed is None (or carries a ``message``); it never raises for
data that can be pooled at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from metapsych.errors import InputError
from metapsych.stats.values import finite_or_none

BIAS_KEYS = ("egger", "rank_test", "trim_and_fill", "fail_safe_n", "pet_peese", "selection_model")


def diagnostics_payload(
    yi: Sequence[float] | np.ndarray,
    vi: Sequence[float] | np.ndarray,
    study: Sequence[object] | None,
    cluster: Sequence[object] | None,
    *,
    estimator: str = "REML",
    knha: bool = False,
    level: float = 0.95,
    min_k_bias: int = 10,
    year: Sequence[float] | None = None,
) -> dict[str, Any]:
    """All robustness keys for the effects (yi, vi) labelled ``study``; ``cluster`` (or None) groups them.

    ``min_k_bias``: publication-bias keys are null below this k (``bias_note`` says why). ``three_level`` is
    metafor's ``rma.mv(yi, vi, random = ~ 1 | cluster/effect)`` with its default z test whatever ``knha``
    says (the contract's model); ``robust`` (CR1) and ``robust_cr2`` use t tests by construction. ``year`` adds
    the cumulative meta-analysis by publication year. InputError if the lengths do not match or a cluster
    label is blank.
    """
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    labels = [str(s) for s in study] if study is not None else [f"Study {i + 1}" for i in range(y.size)]
    if len(labels) != y.size or v.size != y.size or (cluster is not None and len(cluster) != y.size):
        raise InputError("yi, vi, study and cluster must have one entry per effect size")
    if cluster is not None:
        _check_clusters(cluster)
    test = "knha" if knha else "z"
    out: dict[str, Any] = {}
    out.update(_case_keys(y, v, labels, estimator, test, level))
    out.update(_bias_keys(y, v, estimator, test, level, min_k_bias))
    if cluster is not None:
        out.update(_cluster_keys(y, v, list(cluster), "z", level))
    if year is not None:
        out["cumulative"] = _cumulative(y, v, labels, year, estimator, test, level)
    return out


def _check_clusters(cluster: Sequence[object]) -> None:
    """Every effect needs a cluster label; a blank one would silently pool unrelated effects together."""
    blank = [i + 1 for i, c in enumerate(cluster) if c is None or (isinstance(c, float) and math.isnan(c))
             or (isinstance(c, str) and not c.strip())]
    if blank:
        rows = ", ".join(map(str, blank[:10])) + (" ..." if len(blank) > 10 else "")
        raise InputError(f"cluster: no cluster label in effect row(s) {rows} (expected a label for every effect)")


def _case_keys(y, v, labels, estimator, test, level) -> dict[str, Any]:
    from metapsych.stats.influence import case_diagnostics, ci_outliers

    try:
        cd = case_diagnostics(y, v, estimator=estimator, test=test, level=level)
    except ValueError as exc:
        return {"leave_one_out": None, "influence": None, "outliers": None, "baujat": None,
                "influence_note": str(exc)}
    loo, inf = cd.leave_one_out, cd.influence
    outliers = ci_outliers(y, v, cd.full.ci, level=level)
    return {
        "leave_one_out": [
            {"study": s, "estimate": finite_or_none(loo.estimate[i]), "se": finite_or_none(loo.se[i]), "ci_lower": finite_or_none(loo.ci_lower[i]),
             "ci_upper": finite_or_none(loo.ci_upper[i]), "p_value": finite_or_none(loo.p_value[i]), "tau2": finite_or_none(loo.tau2[i]),
             "I2": finite_or_none(loo.I2[i]), "Q": finite_or_none(loo.Q[i])}
            for i, s in enumerate(labels)],
        "influence": [
            {"study": s, "rstudent": finite_or_none(inf.rstudent[i]), "dffits": finite_or_none(inf.dffits[i]),
             "cooks_d": finite_or_none(inf.cooks_d[i]), "cov_r": finite_or_none(inf.cov_r[i]), "hat": finite_or_none(inf.hat[i]),
             "weight": finite_or_none(inf.weight[i]), "tau2_del": finite_or_none(inf.tau2_del[i]), "Q_del": finite_or_none(inf.Q_del[i]),
             "dfbetas": finite_or_none(inf.dfbetas[i, 0]), "influential": bool(inf.influential[i])}
            for i, s in enumerate(labels)],
        "outliers": [s for s, flag in zip(labels, outliers) if flag],
        "baujat": [{"study": s, "x": finite_or_none(inf.baujat_x[i]), "y": finite_or_none(inf.baujat_y[i])} for i, s in enumerate(labels)],
    }


def _bias_keys(y, v, estimator, test, level, min_k) -> dict[str, Any]:
    k = y.size
    if k < min_k:
        note = (f"Publication-bias tests are reported only for k >= {min_k}; this analysis has k = {k}.")
        return {**{key: None for key in BIAS_KEYS}, "bias_note": note}
    parts = {"egger": _egger, "rank_test": _rank, "trim_and_fill": _trimfill, "fail_safe_n": _fsn,
             "pet_peese": _pet_peese, "selection_model": _selection}
    out: dict[str, Any] = {}
    notes = []
    for key, make in parts.items():
        try:
            out[key] = make(y, v, estimator, test, level)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            out[key] = None
            notes.append(f"{key}: {exc}")
    out["bias_note"] = "; ".join(notes) or None
    return out


def _egger(y, v, estimator, test, level) -> dict[str, Any]:
    from metapsych.stats.bias import regtest

    r = regtest(y, v, estimator=estimator, test=test, level=level)
    return {"statistic": finite_or_none(r.statistic), "p_value": finite_or_none(r.p_value), "df": finite_or_none(r.df),
            "limit_estimate": finite_or_none(r.limit_estimate), "limit_ci_lower": finite_or_none(r.limit_ci_lower),
            "limit_ci_upper": finite_or_none(r.limit_ci_upper)}


def _rank(y, v, estimator, test, level) -> dict[str, Any]:
    from metapsych.stats.bias import ranktest

    r = ranktest(y, v)
    return {"tau": finite_or_none(r.tau), "p_value": finite_or_none(r.p_value), "exact": r.exact}


def _trimfill(y, v, estimator, test, level) -> dict[str, Any]:
    from metapsych.stats.bias import trimfill

    t = trimfill(y, v, estimator=estimator, test=test, level=level)
    f = t.fit
    return {"k0": t.k0, "side": t.side, "estimate": finite_or_none(f.estimate), "se": finite_or_none(f.se[0]),
            "ci_lower": finite_or_none(f.ci_lower[0]), "ci_upper": finite_or_none(f.ci_upper[0]), "level": f.level,
            "p_value": finite_or_none(f.p_value[0]),
            "tau2": finite_or_none(f.tau2), "filled": [{"yi": finite_or_none(a), "vi": finite_or_none(b)} for a, b in
                                            zip(t.yi[t.filled], t.vi[t.filled])]}


def _fsn(y, v, estimator, test, level) -> dict[str, Any]:
    from metapsych.stats.bias import fail_safe_n

    f = fail_safe_n(y, v)
    return {"rosenthal": finite_or_none(f.rosenthal), "orwin": finite_or_none(f.orwin), "orwin_target": finite_or_none(f.orwin_target)}


def _pet_peese(y, v, estimator, test, level) -> dict[str, Any]:
    from metapsych.stats.bias import pet_peese

    p = pet_peese(y, v, level=level)
    return {"pet": {"estimate": finite_or_none(p.pet_estimate), "ci_lower": finite_or_none(p.pet_ci_lower),
                    "ci_upper": finite_or_none(p.pet_ci_upper), "p_value": finite_or_none(p.pet_p_value)},
            "peese": {"estimate": finite_or_none(p.peese_estimate), "ci_lower": finite_or_none(p.peese_ci_lower),
                      "ci_upper": finite_or_none(p.peese_ci_upper), "p_value": finite_or_none(p.peese_p_value)},
            "chosen": p.chosen}


def _selection(y, v, estimator, test, level) -> dict[str, Any]:
    from metapsych.stats.selection import step_selection_model

    s = step_selection_model(y, v, level=level)
    return {"estimate": finite_or_none(s.estimate), "se": finite_or_none(s.se), "ci_lower": finite_or_none(s.ci_lower),
            "ci_upper": finite_or_none(s.ci_upper), "p_value": finite_or_none(s.p_value), "tau2": finite_or_none(s.tau2),
            "steps": [finite_or_none(x) for x in s.steps], "delta": [finite_or_none(x) for x in s.delta],
            "k_per_interval": [int(x) for x in s.k_per_interval], "lrt": finite_or_none(s.lrt), "lrt_p": finite_or_none(s.lrt_p),
            "message": s.message}


def _cluster_keys(y, v, cluster, test, level) -> dict[str, Any]:
    from metapsych.stats.multilevel import fit_three_level
    from metapsych.stats.robust import SingleClusterError, cr1, cr2

    try:
        f = fit_three_level(y, v, cluster, test=test, level=level)
    except (ValueError, np.linalg.LinAlgError) as exc:
        msg = f"the three-level model could not be fitted: {exc}"
        return {"three_level": _empty_three_level(msg), "robust": _empty_robust(msg), "robust_cr2": _empty_robust(msg)}
    out: dict[str, Any] = {"three_level": _three_level_block(f)}
    for key, method in (("robust", cr1), ("robust_cr2", cr2)):
        try:
            r = method(f.yi, f.x, f.marginal, f.beta, f.cluster_codes, level=level)
        except SingleClusterError as exc:
            out[key] = _empty_robust(f"{exc}; cluster-robust standard errors are not available")
            continue
        out[key] = {"estimate": finite_or_none(r.beta[0]), "se": finite_or_none(r.se[0]), "ci_lower": finite_or_none(r.ci_lower[0]),
                    "ci_upper": finite_or_none(r.ci_upper[0]), "statistic": finite_or_none(r.statistic[0]), "p_value": finite_or_none(r.p_value[0]),
                    "df": finite_or_none(r.df[0]), "n_clusters": r.n_clusters, "method": r.method, "message": None}
    return out


def _three_level_block(f) -> dict[str, Any]:
    return {"estimate": finite_or_none(f.beta[0]), "se": finite_or_none(f.se[0]), "ci_lower": finite_or_none(f.ci_lower[0]),
            "ci_upper": finite_or_none(f.ci_upper[0]), "statistic": finite_or_none(f.statistic[0]), "p_value": finite_or_none(f.p_value[0]),
            "df": finite_or_none(f.df), "sigma2": [finite_or_none(s) for s in f.sigma2], "Q": finite_or_none(f.Q), "Q_df": int(f.Q_df),
            "Q_p": finite_or_none(f.Q_p), "I2": {"total": finite_or_none(f.I2_total), "between": finite_or_none(f.I2_between),
                                      "within": finite_or_none(f.I2_within)},
            "pi_lower": finite_or_none(f.pi_lower), "pi_upper": finite_or_none(f.pi_upper), "k": f.k, "n_clusters": f.n_clusters,
            "test": f.test, "message": f.message}


def _empty_three_level(message: str) -> dict[str, Any]:
    keys = ("estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value", "df", "sigma2", "Q")
    return {**{k: None for k in keys}, "message": message}


def _empty_robust(message: str) -> dict[str, Any]:
    keys = ("estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value", "df", "n_clusters", "method")
    return {**{k: None for k in keys}, "message": message}


def _cumulative(y, v, labels, year, estimator, test, level) -> list[dict[str, Any]]:
    from metapsych.stats.cumulative import cumulative

    years = np.array([np.inf if finite_or_none(t) is None else float(t) for t in year])
    c = cumulative(y, v, years, estimator=estimator, test=test, level=level)
    return [{"study": labels[j], "year": finite_or_none(years[j]), "estimate": finite_or_none(c.estimate[i]),
             "ci_lower": finite_or_none(c.ci_lower[i]), "ci_upper": finite_or_none(c.ci_upper[i]), "p_value": finite_or_none(c.p_value[i]),
             "tau2": finite_or_none(c.tau2[i]), "I2": finite_or_none(c.I2[i])} for i, j in enumerate(c.order)]
