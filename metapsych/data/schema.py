"""The trial file schema (pydantic models): one YAML file per randomised trial.

The models check structure and types only; vocabulary codes, data kinds and plausibility are checked in
:mod:`metapsych.data.checks`, which knows the file's line numbers. The format is documented with one
example per data kind in ``studies/README.md``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Scalar = Union[bool, int, float, str, None]


def _not_bool(value: Any) -> Any:
    """Refuse true/false where a number belongs (pydantic would silently read true as 1), and numeric text
    with digit groups (``9_0``: YAML 1.2 reads it as text, and pydantic would read it as 90)."""
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not a number")
    if isinstance(value, str) and "_" in value and re.fullmatch(r"[-+]?[0-9_.]+([eE][-+]?[0-9_]+)?", value.strip()):
        raise ValueError(f"{value!r} is not a number (no digit separators)")
    return value


#: a number field: int or float, also numeric text, but never true/false
Number = Annotated[float, BeforeValidator(_not_bool)]
Count = Annotated[int, BeforeValidator(_not_bool)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskOfBias(_Model):
    """Overall risk-of-bias judgement, the tool that produced it, and optional domain ratings."""

    tool: Literal["rob1", "rob2", "metapsy", "other"] = "rob2"
    overall: Optional[str] = None  # vocabulary: low, some, high
    score: Optional[Number] = None  # numeric scores, e.g. the Metapsy 0-4 RoB-1 sum
    domains: dict[str, Scalar] = Field(default_factory=dict)
    original: Scalar = None  # the value as the source database wrote it


class Arm(_Model):
    """One randomised arm: a therapy, a control condition, pharmacotherapy or a combination."""

    id: str
    approach: str  # vocabulary code (therapy, control, pharmacotherapy or combined)
    label: Optional[str] = None
    original_code: Optional[str] = None  # the source database's code when it had no vocabulary equivalent
    multi_arm: Optional[str] = None  # the Metapsy multi-arm specification, kept for export
    format: Optional[str] = None
    sessions: Optional[Number] = None
    randomized: Optional[Count] = None
    cluster_size: Optional[Number] = None
    icc: Optional[Number] = None


class Timepoint(_Model):
    """When an outcome was measured."""

    label: Literal["post", "follow-up"]
    weeks: Optional[Number] = None


class Result(_Model):
    """One arm's data for one outcome: exactly one of {mean, sd, n}, {change_mean, change_sd, n},
    {events, n}; or only {n} when the outcome carries a precomputed effect or a test statistic."""

    mean: Optional[Number] = None
    sd: Optional[Number] = None
    change_mean: Optional[Number] = None
    change_sd: Optional[Number] = None
    events: Optional[Number] = None
    n: Optional[Number] = None


class Precomputed(_Model):
    """A precomputed Hedges' g for the pair ``arms`` (positive = the first arm is better), with SE or CI."""

    arms: tuple[str, str]
    g: Number
    se: Optional[Number] = None
    ci_lower: Optional[Number] = None
    ci_upper: Optional[Number] = None
    source: Optional[str] = None


class Statistic(_Model):
    """A between-arm test statistic (exactly one of t, F, p) and the arm it favours; n per arm in results."""

    t: Optional[Number] = None
    f: Optional[Number] = None
    p: Optional[Number] = None
    favours: str


class Outcome(_Model):
    """One instrument at one time point, with per-arm results, a precomputed effect, or a statistic."""

    instrument: str
    timepoint: Timepoint
    rating: Optional[str] = None
    lower_is_better: Optional[bool] = None  # default: the vocabulary's direction of the instrument
    type: Optional[str] = None  # the source's outcome type text, e.g. "response (50%)"
    results: dict[str, Result] = Field(default_factory=dict)
    precomputed: Optional[Precomputed] = None
    statistic: Optional[Statistic] = None
    note: Optional[str] = None


class Source(_Model):
    """Where an imported trial came from."""

    database: Optional[str] = None
    version: Optional[str] = None
    study: Optional[str] = None
    rows: list[int] = Field(default_factory=list)


class Trial(_Model):
    """One randomised trial."""

    id: str
    study: Optional[str] = None  # display label, e.g. "Smith, 2019" (default: the id)
    citation: Optional[str] = None
    year: Optional[Count] = None
    country: Optional[str] = None
    condition: str
    population: Optional[str] = None
    risk_of_bias: Optional[RiskOfBias] = None
    arms: list[Arm]
    outcomes: list[Outcome]
    comparisons: Optional[list[tuple[str, str]]] = None
    moderators: dict[str, Scalar] = Field(default_factory=dict)
    source: Optional[Source] = None
    notes: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        """Display label of the trial."""
        return self.study or self.id


#: field names of each model, for "did you mean" on unknown keys
FIELDS = {
    model.__name__: list(model.model_fields)
    for model in (RiskOfBias, Arm, Timepoint, Result, Precomputed, Statistic, Outcome, Source, Trial)
}
