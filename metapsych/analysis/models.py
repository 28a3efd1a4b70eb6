"""The MODEL block of the results document, built from a fitted model (docs/architecture.md).

Every number is a plain float or None (never NaN), so the document is valid JSON and stable across runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metapsych.stats.values import finite_or_none

if TYPE_CHECKING:
    from metapsych.analysis.config import Config
    from metapsych.stats.rma import RmaFit

MODEL_KEYS = ("k", "estimate", "se", "ci_lower", "ci_upper", "statistic", "p_value", "df", "tau2", "tau2_ci",
              "tau", "I2", "I2_ci", "H2", "Q", "Q_df", "Q_p", "pi_lower", "pi_upper", "nnt", "estimator", "test",
              "message")


def interval(lower: object, upper: object) -> list[float | None]:
    """A ``[lower, upper]`` pair of JSON-safe numbers."""
    return [finite_or_none(lower), finite_or_none(upper)]


def model_block(fit: RmaFit, config: Config, tau2_ci: tuple[float, float] | None = None,
                I2_ci: tuple[float, float] | None = None) -> dict:
    """The MODEL dict of an intercept-only fit (NNT from the pooled g and the config's CER)."""
    from metapsych.effects.nnt import nnt_furukawa

    estimate = finite_or_none(fit.beta[0]) if fit.converged else None
    nnt = finite_or_none(nnt_furukawa(estimate, config.effect.cer)) if estimate is not None else None
    pi = (fit.pi_lower, fit.pi_upper) if config.model.prediction_interval else (None, None)
    return {
        "k": int(fit.k),
        "estimate": estimate,
        "se": finite_or_none(fit.se[0]),
        "ci_lower": finite_or_none(fit.ci_lower[0]),
        "ci_upper": finite_or_none(fit.ci_upper[0]),
        "statistic": finite_or_none(fit.statistic[0]),
        "p_value": finite_or_none(fit.p_value[0]),
        "df": finite_or_none(fit.df),
        "tau2": finite_or_none(fit.tau2),
        "tau2_ci": interval(*(tau2_ci or (None, None))),
        "tau": finite_or_none(fit.tau),
        "I2": finite_or_none(fit.I2),
        "I2_ci": interval(*(I2_ci or (None, None))),
        "H2": finite_or_none(fit.H2),
        "Q": finite_or_none(fit.Q),
        "Q_df": int(fit.Q_df),
        "Q_p": finite_or_none(fit.Q_p),
        "pi_lower": finite_or_none(pi[0]),
        "pi_upper": finite_or_none(pi[1]),
        "nnt": nnt,
        "estimator": fit.estimator,
        "test": fit.test,
        "message": fit.message if fit.converged else (fit.message or "the model did not converge"),
    }


def test_name(config: Config) -> str:
    """The rma test the config asks for."""
    return "knha" if config.model.knha else "z"
