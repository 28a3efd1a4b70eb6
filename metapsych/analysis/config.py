"""The analysis configuration (configs/default.yaml): what to pool, how, and in which cells.

Validated with pydantic; unknown keys are rejected with a "did you mean" suggestion, and every problem is
reported as ``FILE:LINE: field: problem (expected ...)`` in one ConfigError. The defaults mirror
metapsyTools' ``runMetaAnalysis``: REML, Hartung-Knapp, Q-profile CIs, within-trial aggregation with
rho = 0.6, CER 0.2, at least 2 trials per cell, small-study tests only from k = 10.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from metapsych.errors import ConfigError, DataError, Problem

if TYPE_CHECKING:
    from metapsych.data.yaml_io import YamlDocument

Time = Literal["post", "follow-up"]
SubgroupVariable = Literal["control", "format", "risk_of_bias"]
ESTIMATORS = ("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"

# Moderator names a config may use for comparison-table columns (any numeric column also works).
MODERATOR_ALIASES = {"sessions": "n_sessions_arm1", "risk_of_bias": "rob"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EffectConfig(_Strict):
    """The effect measure (Hedges' g, positive = therapy better) and the CER for NNTs."""

    measure: Literal["g"] = "g"
    cer: float = Field(0.2, gt=0, lt=1)


class ModelConfig(_Strict):
    """The random-effects model of every cell."""

    estimator: Literal[ESTIMATORS] = "REML"  # type: ignore[valid-type]
    knha: bool = True
    prediction_interval: bool = True
    level: float = Field(0.95, gt=0.5, lt=1)


class DependencyConfig(_Strict):
    """Several effects of one trial in one cell: aggregate them (assumed correlation rho) or take the first."""

    method: Literal["aggregate", "first"] = "aggregate"
    rho: float = Field(0.6, ge=0, le=1)


class AnalysisConfig(_Strict):
    """One family of cells: each approach against each control type, all controls pooled, or head-to-head.

    ``conditions``, ``approaches``, ``controls``, ``instruments`` and ``ratings`` restrict the rows used
    (None = all); ``time`` says which time points get cells.
    """

    name: str = Field(pattern=NAME_PATTERN)
    comparators: Literal["each-control", "all-controls", "head-to-head"]
    time: list[Time] = ["post", "follow-up"]
    conditions: list[str] | None = None
    approaches: list[str] | None = None
    controls: list[str] | None = None
    instruments: list[str] | None = None
    ratings: list[Literal["self-report", "clinician"]] | None = None
    subgroups: list[SubgroupVariable] = []
    min_studies: int | None = Field(None, ge=1)


class ModeratorsConfig(_Strict):
    """Trial-level meta-regressions per condition (therapy vs any control at `time`)."""

    variables: list[str] = ["sessions", "year", "rob", "percent_women", "mean_age"]
    time: Time = "post"
    min_studies: int = Field(10, ge=3)


class NetworkConfig(_Strict):
    """Network meta-analysis per condition; the first reference present in a condition's network is used."""

    enabled: bool = True
    time: Time = "post"
    reference: list[str] = ["care-as-usual", "waitlist"]
    split_by_format: bool = False  # treatments approach/format (cbt/group); arms without a format stay whole


class Config(_Strict):
    """The whole analysis configuration."""

    effect: EffectConfig = EffectConfig()
    model: ModelConfig = ModelConfig()
    dependency: DependencyConfig = DependencyConfig()
    min_studies: int = Field(2, ge=1)
    bias_min_studies: int = Field(10, ge=3)
    sensitivity: bool = True
    analyses: list[AnalysisConfig] = Field(min_length=1)
    moderators: ModeratorsConfig = ModeratorsConfig()
    network: NetworkConfig = NetworkConfig()

    @field_validator("analyses")
    @classmethod
    def _unique_names(cls, analyses: list[AnalysisConfig]) -> list[AnalysisConfig]:
        names = [a.name for a in analyses]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"analysis names must be unique; repeated: {', '.join(twice)}")
        return analyses

    def sha256(self) -> str:
        """Hash of the validated settings (not of the file's formatting or comments)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def load_config(path: Path) -> Config:
    """Read and validate an analysis config; ConfigError listing every problem with its line."""
    from metapsych.data.yaml_io import read_yaml

    if not path.is_file():
        raise ConfigError([Problem(str(path), None, "(file)", "config file not found", "a YAML file")])
    try:
        doc = read_yaml(path)
    except DataError as exc:
        raise ConfigError(exc.problems) from None
    if not isinstance(doc.value, dict):
        raise ConfigError([Problem(str(path), 1, "(file)", "the config is not a mapping", "key: value pairs")])
    try:
        return Config.model_validate(doc.value)
    except ValidationError as exc:
        raise ConfigError([_problem(doc, err) for err in exc.errors()]) from None


def _problem(doc: YamlDocument, err: dict) -> Problem:
    from metapsych.data.yaml_io import format_path

    loc = tuple(err["loc"])
    file, field, line = doc.file, format_path(loc), doc.line(loc)
    if err["type"] == "extra_forbidden":
        keys = _known_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
        problem = f"unknown key; did you mean '{close[0]}'?" if close else "unknown key"
        return Problem(file, line, field, problem, f"one of {', '.join(keys)}")
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        return Problem(file, line, field, f"got {err.get('input')!r}", str(ctx["expected"]))
    if "pattern" in ctx:
        return Problem(file, line, field, f"got {err.get('input')!r}", "lower-case letters, digits, hyphens")
    return Problem(file, line, field, err["msg"])


def _known_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        inner = getattr(annotation, "__args__", (annotation,))
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), model)
    return sorted(model.model_fields)


def moderator_column(name: str) -> str:
    """The comparison-table column a configured moderator name refers to."""
    return MODERATOR_ALIASES.get(name, name)
