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
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from metapsych.errors import ConfigError, DataError, Problem, clip

if TYPE_CHECKING:
    from metapsych.data.vocabulary import Vocabulary
    from metapsych.data.yaml_io import YamlDocument

Time = Literal["post", "follow-up"]
SubgroupVariable = Literal["control", "format", "risk_of_bias"]
ESTIMATORS = ("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
MAX_STUDIES = 1_000_000  # bound of every minimum number of trials (a larger one would exclude every cell)

# Moderator names a config may use for comparison-table columns (any numeric column also works).
MODERATOR_ALIASES = {"sessions": "n_sessions_arm1", "risk_of_bias": "rob"}


class _Strict(BaseModel):
    # strict: YAML already gives typed values, so true is never read as 1 nor "0.95" as a number
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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
    rho: float = Field(0.6, ge=0, lt=1)  # 1 makes the within-trial covariance matrix singular


class AnalysisConfig(_Strict):
    """One family of cells: each approach against each control type, all controls pooled, or head-to-head.

    ``conditions``, ``approaches``, ``controls``, ``instruments`` and ``ratings`` restrict the rows used
    (None = all); ``time`` says which time points get cells.
    """

    name: str = Field(pattern=NAME_PATTERN)
    comparators: Literal["each-control", "all-controls", "head-to-head"]
    time: list[Time] = Field(["post", "follow-up"], min_length=1)
    conditions: list[str] | None = Field(None, min_length=1)  # an empty list would select nothing, silently
    approaches: list[str] | None = Field(None, min_length=1)
    controls: list[str] | None = Field(None, min_length=1)
    instruments: list[str] | None = Field(None, min_length=1)
    ratings: list[Literal["self-report", "clinician"]] | None = Field(None, min_length=1)
    subgroups: list[SubgroupVariable] = []
    min_studies: int | None = Field(None, ge=1, le=MAX_STUDIES)


class ModeratorsConfig(_Strict):
    """Trial-level meta-regressions per condition (therapy vs any control at `time`)."""

    variables: list[str] = ["sessions", "year", "rob", "percent_women", "mean_age"]
    time: Time = "post"
    min_studies: int = Field(10, ge=3, le=MAX_STUDIES)


class NetworkConfig(_Strict):
    """Network meta-analysis per condition; the first reference present in a condition's network is used."""

    enabled: bool = True
    time: Time = "post"
    reference: list[str] = Field(["care-as-usual", "waitlist"], min_length=1)
    split_by_format: bool = False  # treatments approach/format (cbt/group); arms without a format stay whole


class Config(_Strict):
    """The whole analysis configuration."""

    effect: EffectConfig = EffectConfig()
    model: ModelConfig = ModelConfig()
    dependency: DependencyConfig = DependencyConfig()
    min_studies: int = Field(2, ge=1, le=MAX_STUDIES)
    bias_min_studies: int = Field(10, ge=3, le=MAX_STUDIES)
    sensitivity: bool = True
    analyses: list[AnalysisConfig] = Field(min_length=1)
    moderators: ModeratorsConfig = ModeratorsConfig()
    network: NetworkConfig = NetworkConfig()
    _source: Path | None = PrivateAttr(None)  # the file it was read from, for errors found against the data

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


def load_config(path: Path, vocabulary: Vocabulary | None = None) -> Config:
    """Read and validate an analysis config; ConfigError listing every problem with its line.

    Vocabulary codes in the config (conditions, approaches, controls, instruments, network references) are
    checked against ``vocabulary``, by default the review's (``vocabulary.yaml`` beside the config, else
    ``configs/vocabulary.yaml``): a code the trials cannot use, or an alias, would silently select nothing.
    """
    from metapsych.data.yaml_io import read_yaml

    if not path.is_file():
        found = "is not a regular file (a folder, pipe or device)" if path.exists() else "config file not found"
        raise ConfigError([Problem(str(path), None, "(file)", found, "a YAML file")])
    try:
        doc = read_yaml(path)
    except DataError as exc:
        raise ConfigError(exc.problems) from None
    if not isinstance(doc.value, dict):
        raise ConfigError([Problem(str(path), 1, "(file)", "the config is not a mapping", "key: value pairs")])
    try:
        config = Config.model_validate(doc.value)
    except ValidationError as exc:
        raise ConfigError([_problem(doc, err) for err in exc.errors()]) from None
    problems = _code_problems(config, doc, vocabulary or _review_vocabulary(path))
    if problems:
        raise ConfigError(problems)
    config._source = path
    return config


def check_moderators(config: Config, columns: Iterable[str]) -> None:
    """ConfigError for each configured moderator that is neither a variable metapsych knows nor a column of
    the trials' table (a moderator some trial reports): it would silently give no meta-regression."""
    from metapsych.data.yaml_io import format_path, read_yaml
    from metapsych.effects.compute import OUTPUT_COLUMNS, REPORTED_EFFECT_COLUMNS

    present = {*_known_moderators(), *columns}
    effect = {*OUTPUT_COLUMNS, *REPORTED_EFFECT_COLUMNS}  # sample sizes, means and events stay allowed
    names = list(enumerate(config.moderators.variables))
    wrong = [(j, name, "is the effect size or a statistic it is computed from, not a trial characteristic (a "
              "regression on it explains the effects by themselves)") for j, name in names
             if moderator_column(name) in effect]
    wrong += [(j, name, "no trial reports it" + _suggestion(name, sorted(present))) for j, name in names
              if moderator_column(name) not in present and moderator_column(name) not in effect]
    if not wrong:
        return
    source = config._source
    doc = read_yaml(source) if source is not None else None
    raise ConfigError([Problem(str(source or "config"), doc.line(("moderators", "variables", j)) if doc else None,
                               format_path(("moderators", "variables", j)), f"moderator {name!r}: {why}",
                               "a trial characteristic: a comparison-table column or a moderator of the trial files")
                       for j, name, why in sorted(wrong)])


def _suggestion(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _review_vocabulary(config_path: Path) -> Vocabulary:
    from metapsych.data.vocabulary import load_vocabulary

    candidates = (config_path.parent / "vocabulary.yaml", Path("configs") / "vocabulary.yaml")
    return load_vocabulary(next((p for p in candidates if p.is_file()), None))


def _code_problems(config: Config, doc: YamlDocument, vocabulary: Vocabulary) -> list[Problem]:
    """Codes the vocabulary does not know (or aliases where the canonical code is needed), and moderator
    names one typo away from a comparison-table column."""
    where: list[tuple[tuple, str, str | None]] = []  # (path, kind, value)
    for i, analysis in enumerate(config.analyses):
        for key, kind in (("conditions", "condition"), ("approaches", "approach"), ("controls", "approach"),
                          ("instruments", "instrument")):
            where += [(("analyses", i, key, j), kind, v) for j, v in enumerate(getattr(analysis, key) or [])]
    where += [(("network", "reference", j), "approach", v) for j, v in enumerate(config.network.reference)]
    problems = [p for path, kind, value in where if (p := _code_problem(doc, path, kind, value, vocabulary))]
    return problems + _control_problems(config, doc, vocabulary) + _moderator_problems(config, doc)


def _control_problems(config: Config, doc: YamlDocument, vocabulary: Vocabulary) -> list[Problem]:
    """``controls`` naming an approach that is not a control, or ``approaches`` naming a control: it matches
    no comparison, so the analysis would silently lose those cells."""
    from metapsych.data.yaml_io import format_path

    controls = sorted(code for code in vocabulary.codes["approach"] if vocabulary.arm_kind(code) == "control")
    problems = []
    for i, analysis in enumerate(config.analyses):
        for key in ("controls", "approaches"):
            for j, value in enumerate(getattr(analysis, key) or []):
                if value not in vocabulary.codes["approach"] or \
                        (vocabulary.arm_kind(value) == "control") == (key == "controls"):
                    continue
                path = ("analyses", i, key, j)
                problem, expected = (f"{value!r} is a {vocabulary.arm_kind(value)} approach, not a control",
                                     f"one of the control codes {', '.join(controls)}") if key == "controls" else \
                    (f"{value!r} is a control, not an approach tested against one", "an approach code (cbt, ipt, ...)")
                problems.append(Problem(doc.file, doc.line(path), format_path(path), problem, expected))
    return problems


def _code_problem(doc: YamlDocument, path: tuple, kind: str, value: str, vocabulary: Vocabulary) -> Problem | None:
    from metapsych.data.yaml_io import format_path

    if value in vocabulary.codes[kind]:
        return None
    code = vocabulary.lookup(kind, value)
    if kind == "instrument" and code is None:
        return None  # an instrument outside the vocabulary is allowed (its trials give lower_is_better)
    name = kind.replace("_", " ")
    if code is not None:
        problem = f"{value!r} is an alias; the config needs the {name} code {code!r}"
    else:
        suggestion = vocabulary.suggest(kind, value)
        problem = f"unknown {name} {value!r}" + (f"; did you mean {suggestion!r}?" if suggestion else "")
    codes = sorted(vocabulary.codes[kind])
    shown = ", ".join(codes[:12]) + (", ..." if len(codes) > 12 else "")
    return Problem(doc.file, doc.line(path), format_path(path), problem, f"one of the {name} codes {shown}")


def _moderator_problems(config: Config, doc: YamlDocument) -> list[Problem]:
    from metapsych.data.yaml_io import format_path

    known = _known_moderators()
    problems = []
    for j, name in enumerate(config.moderators.variables):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.88)
        if name not in known and close:
            path = ("moderators", "variables", j)
            problems.append(Problem(doc.file, doc.line(path), format_path(path),
                                    f"unknown moderator {name!r}; did you mean {close[0]!r}?",
                                    "a comparison-table column or a moderator of the trial files"))
    return problems


def _known_moderators() -> list[str]:
    """Moderator names that need no trial to report them: the table's columns, their aliases and the
    sample make-up moderators of the shipped config."""
    from metapsych.data.table import COLUMNS

    return sorted({*COLUMNS, *MODERATOR_ALIASES, "percent_women", "mean_age"})


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
    got = f"got {_shown(err.get('input'))}"
    if "expected" in ctx:
        return Problem(file, line, field, got, str(ctx["expected"]))
    if "pattern" in ctx:
        return Problem(file, line, field, got, "lower-case letters, digits, hyphens")
    if err["type"] == "missing":
        return Problem(file, line, field, "required key is missing", f"a value for {loc[-1]}")
    if err["type"] == "value_error":
        return Problem(file, line, field, str(err["msg"]).removeprefix("Value error, "))
    return Problem(file, line, field, got, _expected(err))


def _shown(value: object) -> str:
    """A YAML-like rendering of the offending value (true, null, 95, 'text', a list)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else f"a list of {len(value)}" if value else "an empty list"
    return clip(repr(value))


def _expected(err: dict) -> str:
    """The 'expected' text of a pydantic error, in the config's words."""
    kind, message = err["type"], str(err["msg"])
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "a number " + message.removeprefix("Input should be ")
    if kind == "too_short":
        return f"at least {(err.get('ctx') or {}).get('min_length', 1)} item(s)"
    words = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
             "string_type": "text", "list_type": "a list", "model_type": "a mapping (key: value)",
             "dict_type": "a mapping (key: value)", "int_from_float": "a whole number"}
    return words.get(kind, message.removeprefix("Input should be ").rstrip("."))


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
