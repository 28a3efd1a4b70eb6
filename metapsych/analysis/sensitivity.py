"""The per-cell sensitivity table, after metapsyTools' ``runMetaAnalysis``.

Rows (``model``):

* ``overall``: every effect size as if independent.
* ``combined``: effects combined within trials (metafor ``aggregate``, CS with ``rho``).
* ``lowest`` / ``highest``: per trial only its smallest / largest effect.
* ``outliers_removed``: without trials whose CI lies wholly outside the pooled CI of ``overall``
  (dmetar ``find.outliers``).
* ``influence_removed``: without effects metafor's ``influence()`` flags in ``overall`` (dmetar
  ``InfluenceAnalysis``).
* ``low_rob``: only effects from trials at low risk of bias.
* ``three_level``: ``rma.mv(yi, vi, random = ~ 1 | trial/es)`` (t tests when the config uses Knapp-Hartung,
  as metapsyTools does); tau2 is the sum of both variance components and I2 the total.
* ``three_level_che``: the same with a CS(rho) sampling covariance within trials and CR2 cluster-robust
  inference (Satterthwaite df), as metapsyTools' ``threelevel.che``.

A row that cannot be fitted has its ``message`` and null numbers; the table itself never raises for data
that can be pooled at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from metapsych.stats.values import finite_or_none

ROWS = ("overall", "combined", "lowest", "highest", "outliers_removed", "influence_removed", "low_rob",
        "three_level", "three_level_che")
ROW_KEYS = ("k", "estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value", "df", "tau2", "tau", "I2",
            "I2_ci", "tau2_ci", "H2", "Q", "Q_df", "Q_p", "pi_lower", "pi_upper", "nnt", "estimator", "test",
            "message")


def sensitivity_table(
    yi: Sequence[float] | np.ndarray,
    vi: Sequence[float] | np.ndarray,
    trial: Sequence[object],
    rob_low: Sequence[bool | None] | None,
    *,
    estimator: str = "REML",
    test: str = "z",
    level: float = 0.95,
    cer: float = 0.2,
    rho: float = 0.6,
    models: Sequence[str] = ROWS,
) -> list[dict[str, Any]]:
    """One dict per row of ROWS (keys ``model`` plus ROW_KEYS). ``rob_low[i]`` is True when effect i comes
    from a trial at low risk of bias (None = unknown, treated as not low). ``test``: "z" or "knha".
    ``models`` computes only those rows (still in ROWS order), so that parts of a table can be computed in
    parallel: a row does not depend on which others are computed."""
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    trials = list(trial)
    if not (y.size == v.size == len(trials)) or (rob_low is not None and len(rob_low) != y.size):
        raise ValueError("yi, vi, trial and rob_low must have one entry per effect size")
    unknown = sorted(set(models) - set(ROWS))
    if unknown:
        raise ValueError(f"unknown sensitivity model(s) {', '.join(unknown)} (expected some of {', '.join(ROWS)})")
    ctx = _Context(y, v, trials, estimator, test, level, cer, rho)
    build = {
        "overall": lambda: ctx.overall()[0],
        "combined": ctx.combined,
        "lowest": lambda: ctx.extreme(np.argmin),
        "highest": lambda: ctx.extreme(np.argmax),
        "outliers_removed": lambda: ctx.without_outliers(ctx.overall()[1]),
        "influence_removed": ctx.without_influential,
        "low_rob": lambda: ctx.low_rob(rob_low),
        "three_level": lambda: ctx.three_level(che=False),
        "three_level_che": lambda: ctx.three_level(che=True),
    }
    return [{"model": name, **build[name]()} for name in ROWS if name in models]


def _empty(message: str, k: int = 0) -> dict[str, Any]:
    row: dict[str, Any] = {key: None for key in ROW_KEYS}
    row.update(k=k, message=message, I2_ci=[None, None], tau2_ci=[None, None])
    return row


class _Context:
    """The cell's data and settings, shared by the row builders."""

    def __init__(self, y, v, trials, estimator, test, level, cer, rho) -> None:
        self.y, self.v, self.trials = y, v, trials
        self.estimator, self.test, self.level, self.cer, self.rho = estimator, test, level, cer, rho
        self._overall: tuple[dict[str, Any], Any] | None = None

    def overall(self) -> tuple[dict[str, Any], Any]:
        """The ``overall`` row and its fit (fitted once; the outlier row needs the fit too)."""
        if self._overall is None:
            self._overall = self.fit_rows(np.arange(self.y.size))
        return self._overall

    def nnt(self, estimate: float | None) -> float | None:
        from metapsych.effects.nnt import nnt_furukawa

        return None if estimate is None else finite_or_none(nnt_furukawa(estimate, self.cer))

    def fit_arrays(self, y: np.ndarray, v: np.ndarray, message: str | None = None) -> tuple[dict[str, Any], Any]:
        """The row of a univariate fit on (y, v), and the fit (None if it could not be made)."""
        from metapsych.stats.heterogeneity import confint_tau2
        from metapsych.stats.rma import fit

        if y.size < 2:
            return _empty(message or f"too few effects to pool (k = {y.size})", y.size), None
        f = fit(y, v, estimator=self.estimator, test=self.test, level=self.level)
        if not f.converged:
            return _empty(f.message or "the model did not converge", y.size), None
        ci = confint_tau2(y, v, f)
        row = {
            "k": f.k, "estimate": finite_or_none(f.estimate), "se": finite_or_none(f.se[0]), "ci_lower": finite_or_none(f.ci_lower[0]),
            "ci_upper": finite_or_none(f.ci_upper[0]), "statistic": finite_or_none(f.statistic[0]), "p_value": finite_or_none(f.p_value[0]),
            "df": finite_or_none(f.df), "tau2": finite_or_none(f.tau2), "tau": finite_or_none(f.tau), "I2": finite_or_none(f.I2),
            "I2_ci": [finite_or_none(ci.I2_lower), finite_or_none(ci.I2_upper)], "tau2_ci": [finite_or_none(ci.tau2_lower), finite_or_none(ci.tau2_upper)],
            "H2": finite_or_none(f.H2), "Q": finite_or_none(f.Q), "Q_df": int(f.Q_df), "Q_p": finite_or_none(f.Q_p),
            "pi_lower": finite_or_none(f.pi_lower), "pi_upper": finite_or_none(f.pi_upper), "nnt": self.nnt(finite_or_none(f.estimate)),
            "estimator": f.estimator, "test": f.test, "message": message,
        }
        return row, f

    def fit_rows(self, idx: np.ndarray, message: str | None = None) -> tuple[dict[str, Any], Any]:
        return self.fit_arrays(self.y[idx], self.v[idx], message)

    def combined(self) -> dict[str, Any]:
        from metapsych.stats.aggregate import aggregate

        ya, va, _ = aggregate(self.y, self.v, self.trials, rho=self.rho)
        return self.fit_arrays(ya, va)[0]

    def extreme(self, pick) -> dict[str, Any]:
        """One effect per trial: the one ``pick`` (argmin/argmax) chooses; ties keep the first."""
        from metapsych.stats.multilevel import cluster_codes

        codes = cluster_codes(self.trials)
        idx = np.array([np.flatnonzero(codes == j)[pick(self.y[codes == j])] for j in range(codes.max() + 1)])
        return self.fit_rows(idx)[0]

    def without_outliers(self, overall_fit) -> dict[str, Any]:
        from metapsych.stats.influence import ci_outliers

        if overall_fit is None:
            return _empty("the overall model could not be fitted")
        flags = ci_outliers(self.y, self.v, overall_fit.ci, level=self.level)
        return self._without(flags, "outliers")

    def without_influential(self) -> dict[str, Any]:
        from metapsych.stats.influence import case_diagnostics

        try:
            cd = case_diagnostics(self.y, self.v, estimator=self.estimator, test=self.test, level=self.level)
        except ValueError as exc:
            return _empty(f"no influence analysis: {exc}")
        return self._without(cd.influence.influential, "influential cases")

    def _without(self, flags: np.ndarray, what: str) -> dict[str, Any]:
        n = int(np.sum(flags))
        if n == 0:
            return self.fit_rows(np.arange(self.y.size), f"no {what} found; same as overall")[0]
        keep = np.flatnonzero(~flags)
        if keep.size < 2:
            return _empty(f"{n} of {self.y.size} effects are {what}; too few remain to pool", int(keep.size))
        return self.fit_rows(keep, f"{n} {what} removed")[0]

    def low_rob(self, rob_low: Sequence[bool | None] | None) -> dict[str, Any]:
        if rob_low is None:
            return _empty("no risk-of-bias ratings")
        keep = np.array([bool(r) for r in rob_low])
        if keep.sum() < 2:
            return _empty(f"too few effects from trials at low risk of bias (k = {int(keep.sum())})", int(keep.sum()))
        return self.fit_rows(np.flatnonzero(keep))[0]

    def three_level(self, che: bool) -> dict[str, Any]:
        from metapsych.stats.multilevel import compound_symmetric_v, fit_three_level
        from metapsych.stats.robust import SingleClusterError, cr2

        n_trials = len(set(self.trials))
        if n_trials < 2 or self.y.size < 3:
            return _empty(f"a three-level model needs at least 2 trials and 3 effects ({n_trials} trials, "
                          f"{self.y.size} effects)", self.y.size)
        v = compound_symmetric_v(self.v, self.trials, self.rho) if che else self.v
        try:
            f = fit_three_level(self.y, v, self.trials, test="t" if self.test in ("knha", "t") else "z",
                                level=self.level)
        except (ValueError, np.linalg.LinAlgError) as exc:
            return _empty(f"the three-level model could not be fitted: {exc}", self.y.size)
        row = self._three_level_row(f)
        if che:
            try:
                r = cr2(f.yi, f.x, f.marginal, f.beta, f.cluster_codes, level=self.level)
            except SingleClusterError as exc:
                return _empty(str(exc), self.y.size)
            row.update(se=finite_or_none(r.se[0]), ci_lower=finite_or_none(r.ci_lower[0]), ci_upper=finite_or_none(r.ci_upper[0]),
                       statistic=finite_or_none(r.statistic[0]), p_value=finite_or_none(r.p_value[0]), df=finite_or_none(r.df[0]), test="CR2")
        return row

    def _three_level_row(self, f) -> dict[str, Any]:
        tau2 = float(np.sum(f.sigma2))
        row = _empty(f.message or (None if f.converged else "REML did not converge"), f.k)  # type: ignore[arg-type]
        row.update(
            estimate=finite_or_none(f.estimate), se=finite_or_none(f.se[0]), ci_lower=finite_or_none(f.ci_lower[0]), ci_upper=finite_or_none(f.ci_upper[0]),
            statistic=finite_or_none(f.statistic[0]), p_value=finite_or_none(f.p_value[0]), df=finite_or_none(f.df), tau2=finite_or_none(tau2),
            tau=finite_or_none(math.sqrt(tau2)), I2=finite_or_none(f.I2_total), Q=finite_or_none(f.Q), Q_df=int(f.Q_df), Q_p=finite_or_none(f.Q_p),
            pi_lower=finite_or_none(f.pi_lower), pi_upper=finite_or_none(f.pi_upper), nnt=self.nnt(finite_or_none(f.estimate)),
            estimator="REML", test=f.test, sigma2=[finite_or_none(s) for s in f.sigma2], n_clusters=f.n_clusters,
        )
        return row


def conclusion(row: dict[str, Any]) -> str | None:
    """The conclusion of a row: "favours" / "harms" when the CI excludes 0 above / below, "unclear" when it
    includes 0, None when the row has no interval."""
    lo, hi = row.get("ci_lower"), row.get("ci_upper")
    if lo is None or hi is None:
        return None
    return "favours" if lo > 0 else "harms" if hi < 0 else "unclear"


def changed_conclusions(main: dict[str, Any], rows: Sequence[dict[str, Any]]) -> list[str]:
    """Models of the sensitivity table whose conclusion (see ``conclusion``) differs from the main model's;
    the overview flags a cell when this list is not empty."""
    reference = conclusion(main)
    if reference is None:
        return []
    return [r["model"] for r in rows if conclusion(r) not in (None, reference)]
