"""Validation of one trial file: schema errors (from pydantic, located by line), vocabulary codes, data
kinds, and plausibility. Every problem is collected; nothing stops at the first.

Errors (exit 2): SD <= 0 (or an SD or SE below 1e-9), n < 2, events < 0 or > n, n > randomized, a result
with none or more than one kind of data, an unknown arm, an unknown vocabulary code, an id that is not a safe
file name or differs from the file stem, a therapy arm with no control arm to be compared with by default, a
number (also a moderator or a risk-of-bias score) that is not finite or implausibly large.
Warnings (reported, do not fail): |g| > 3 estimated from means, SD < 1% of the mean, follow-up without
weeks, the same outcome listed twice.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
from statistics import NormalDist
from typing import Any

from pydantic import BaseModel, ValidationError

from metapsych.data.metapsy import MAX_VALUE
from metapsych.data.schema import FIELDS, Outcome, Result, Trial
from metapsych.data.table import RESERVED
from metapsych.data.vocabulary import UnknownCode, Vocabulary
from metapsych.data.yaml_io import Path_, YamlDocument, format_path
from metapsych.errors import Problem, clip

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
DATA_KINDS = {
    "msd": ("mean", "sd", "n"),
    "change": ("change_mean", "change_sd", "n"),
    "binary": ("events", "n"),
}
LARGE_G = 3.0
#: smallest SD or SE accepted: below it the variance underflows (or the effect overflows) and the trial would
#: silently drop out of every analysis; no instrument is measured that finely
MIN_SPREAD = 1e-9
FIRST_YEAR = 1900
#: trial-level moderators that are percentages (Metapsy databases also store them as proportions, 0-1)
PERCENT = re.compile(r"^(percent_.+|.+_percent)$")


class Checker:
    """Collects the problems of one trial document."""

    def __init__(self, doc: YamlDocument, vocabulary: Vocabulary, stem: str | None) -> None:
        self.doc, self.vocabulary, self.stem = doc, vocabulary, stem
        self.problems: list[Problem] = []
        self.imported = False  # set by check(): the trial came from a database (source.database)
        self._schema_paths: set[Path_] = set()  # values already reported by the schema; not checked again

    def add(self, path: Path_, problem: str, expected: str = "", severity: str = "error") -> None:
        """Record a problem at ``path`` (the line comes from the document), unless the schema already
        reported that value (the salvaged check would otherwise call a rejected value missing)."""
        if tuple(path) in self._schema_paths:
            return
        self.problems.append(Problem(self.doc.file, self.doc.line(path), format_path(path), problem, expected,
                                     severity))  # type: ignore[arg-type]

    # -- schema -----------------------------------------------------------------------------------------
    def parse(self) -> tuple[Trial | None, Trial | None]:
        """The pydantic model of the document, or (None, salvaged) after recording every schema problem.

        ``salvaged`` is the model without the offending values, when that still validates, so that the
        semantic checks can report the file's other problems in the same run.
        """
        value = self.doc.value
        if not isinstance(value, dict):
            problem = "the file is empty" if value is None else f"the file holds {_kind_of(value)}, not a trial"
            self.add((), problem, "a mapping with id, condition, arms, outcomes")
            return None, None
        try:
            return Trial.model_validate(value), None
        except ValidationError as exc:
            by_path: dict[Path_, list[Any]] = {}
            for error in exc.errors():
                by_path.setdefault(self._path_of(error["loc"]), []).append(error)
            for path, errors in by_path.items():
                if len(errors) > 1:  # a value that matched none of a union's types
                    self.add(path, "not a plain value", "a number, text, true/false or nothing")
                else:
                    self._schema_problem(path, errors[0])
            self._schema_paths = set(by_path)
            return None, _salvage(value, list(by_path))

    def _schema_problem(self, path: Path_, error: Any) -> None:
        kind = error["type"]
        if kind == "missing" and isinstance(path[-1], int):
            self.add(path[:-1], "too few items", "a pair of arm ids, [arm, arm]")
        elif kind == "missing":
            self.add(path, "required field is missing", f"a value for {path[-1]}")
        elif kind == "extra_forbidden":
            fields = FIELDS.get(_model_for(path[:-1]), [])
            close = difflib.get_close_matches(str(path[-1]), fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.add(path, f"unknown field{hint}", f"one of {', '.join(fields)}")
        elif kind == "value_error":
            message = str(error["msg"]).removeprefix("Value error, ")
            self.add(path, message, "a number" if "not a number" in message else "a valid value")
        else:
            shown = error.get("input")
            got = f" (got {_shown(shown)})" if isinstance(shown, (str, int, float, bool)) or shown is None else ""
            message = re.sub(r" or instance of \w+", "", str(error["msg"])).rstrip(".")
            pair = kind in ("too_long", "too_short") and ("comparisons" in path or "arms" in path)
            self.add(path, f"{message}{got}", "a pair of arm ids, [arm, arm]" if pair else _expected_for(kind))

    def _path_of(self, loc: tuple[Any, ...]) -> Path_:
        path: list[str | int] = []
        for i, part in enumerate(loc):
            candidate = (*path, part)
            if candidate in self.doc.lines or i == len(loc) - 1 and not _is_tag(part):
                path.append(part)
        return tuple(path)

    # -- semantics --------------------------------------------------------------------------------------
    def check(self, trial: Trial) -> dict[str, Any]:
        """Check a parsed trial; returns the canonical codes resolved on the way."""
        self.imported = bool(trial.source and trial.source.database)
        self._check_id(trial)
        self._check_trial_numbers(trial)
        codes: dict[str, Any] = {"condition": self._code("condition", trial.condition, ("condition",))}
        if trial.risk_of_bias and trial.risk_of_bias.overall is not None:
            codes["rob"] = self._code("risk_of_bias", trial.risk_of_bias.overall, ("risk_of_bias", "overall"))
        arms = self._check_arms(trial, codes["condition"])
        codes["arms"] = arms
        if not trial.outcomes:
            self.add(("outcomes",), "no outcomes", "at least one outcome with results for two arms")
        for i, outcome in enumerate(trial.outcomes):
            self._check_outcome(outcome, ("outcomes", i), arms, trial)
        codes["ratings"] = [
            self._code("rating", o.rating, ("outcomes", i, "rating")) if o.rating else None
            for i, o in enumerate(trial.outcomes)
        ]
        self._check_comparisons(trial, arms)
        return codes

    def _check_id(self, trial: Trial) -> None:
        if not SLUG.match(trial.id):
            self.add(("id",), f"id {trial.id!r} is not safe as a file name",
                     "lower-case letters, digits and '-', starting with a letter or digit")
        elif self.stem is not None and trial.id != self.stem:
            self.add(("id",), f"id {trial.id!r} differs from the file name {self.stem!r}",
                     f"id: {self.stem} (or rename the file to {trial.id}.yaml)")

    def _check_trial_numbers(self, trial: Trial) -> None:
        last = datetime.date.today().year + 1
        if trial.year is not None and not FIRST_YEAR <= trial.year <= last:
            self.add(("year",), f"year {_number_text(trial.year)} is not plausible",
                     f"a publication year {FIRST_YEAR}-{last}")
        if trial.risk_of_bias is not None:
            self._check_numbers(trial.risk_of_bias, ("risk_of_bias",))
        for name, value in trial.moderators.items():
            if name in RESERVED:
                self.add(("moderators", name), f"{name!r} is a column of the comparison table, not a moderator",
                         "a moderator name of its own (the trial's data go in arms and outcomes)")
                continue
            if isinstance(value, str) or value is None:
                continue  # text: imported databases join differing values ("0.73 | 0.67")
            if PERCENT.match(name) and (isinstance(value, bool) or not 0 <= value <= 100):
                self.add(("moderators", name), f"{name} is {_number_text(value)}", "a percentage 0-100")
            else:  # a moderator is a meta-regression covariate: inf or 1e400 would break the regression
                self._check_number(value, ("moderators", name), name)

    def _check_numbers(self, model: BaseModel, path: Path_) -> None:
        """Every number of ``model`` is finite and of plausible size."""
        for name, value in model.model_dump().items():
            self._check_number(value, (*path, name), name)

    def _check_number(self, value: Any, path: Path_, name: str) -> None:
        """A number (not true/false, not text) is finite and of plausible size; integers of any length (YAML
        reads 400 digits as one int, which no float holds) are compared before they are converted."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, f"{name} is not a finite number", "a finite number")
        elif abs(value) > MAX_VALUE:
            self.add(path, f"{name} is {_number_text(value)}, implausibly large",
                     f"a value below {MAX_VALUE:g} in absolute size")

    def _code(self, kind: str, value: str, path: Path_, condition: str | None = None) -> str | None:
        try:
            return self.vocabulary.resolve(kind, value, condition)
        except UnknownCode as exc:
            self.add(path, str(exc), exc.expected)
            return None

    def _check_arms(self, trial: Trial, condition: str | None) -> dict[str, dict[str, Any]]:
        arms: dict[str, dict[str, Any]] = {}
        if len(trial.arms) < 2:
            self.add(("arms",), f"{len(trial.arms)} arm(s)", "at least two arms")
        for i, arm in enumerate(trial.arms):
            path = ("arms", i)
            if not SLUG.match(arm.id):
                self.add((*path, "id"), f"arm id {arm.id!r} is not a slug", "[a-z0-9][a-z0-9-]*")
            if arm.id in arms:
                self.add((*path, "id"), f"duplicate arm id {arm.id!r}", "unique arm ids")
            approach = self._code("approach", arm.approach, (*path, "approach"), condition)
            fmt = self._code("format", arm.format, (*path, "format")) if arm.format else None
            kind = self.vocabulary.codes["approach"][approach]["kind"] if approach else None
            arms[arm.id] = {"approach": approach, "format": fmt, "kind": kind, "arm": arm, "index": i}
            self._check_arm_numbers(arm, path)
        return arms

    def _check_arm_numbers(self, arm: Any, path: Path_) -> None:
        self._check_numbers(arm, path)
        if arm.randomized is not None and arm.randomized < 2:
            self.add((*path, "randomized"), f"randomized n is {arm.randomized}", "at least 2")
        if arm.sessions is not None and arm.sessions < 0:
            self.add((*path, "sessions"), f"negative number of sessions ({arm.sessions:g})", "0 or more")
        if arm.icc is not None and not 0 <= arm.icc <= 1:
            self.add((*path, "icc"), f"icc {arm.icc:g} outside [0, 1]", "an intra-cluster correlation in [0, 1]")
        if arm.cluster_size is not None and arm.cluster_size < 1:
            self.add((*path, "cluster_size"), f"cluster size {arm.cluster_size:g} below 1", "a mean cluster size >= 1")

    def _check_outcome(self, outcome: Outcome, path: Path_, arms: dict[str, dict[str, Any]], trial: Trial) -> None:
        self._check_direction(outcome, path)
        self._check_numbers(outcome.timepoint, (*path, "timepoint"))
        if outcome.timepoint.weeks is not None and outcome.timepoint.weeks < 0:
            self.add((*path, "timepoint", "weeks"), f"negative weeks ({outcome.timepoint.weeks:g})", "0 or more")
        if outcome.timepoint.label == "follow-up" and outcome.timepoint.weeks is None:
            self.add((*path, "timepoint"), "follow-up without weeks", "timepoint: {label: follow-up, weeks: N}",
                     "warning")
        for arm_id in outcome.results:
            if arm_id not in arms:
                self.add((*path, "results", arm_id), f"unknown arm {arm_id!r}", _arm_list(arms))
        if outcome.precomputed is not None and outcome.statistic is not None:
            self.add((*path, "statistic"), "both a precomputed effect and a statistic",
                     "exactly one kind of data per outcome")
        if outcome.precomputed is not None:
            self._check_precomputed(outcome, path, arms)
        elif outcome.statistic is not None:
            self._check_statistic(outcome, path, arms)
        else:
            self._check_results(outcome, path, arms)

    def _check_direction(self, outcome: Outcome, path: Path_) -> None:
        if outcome.lower_is_better is None and self.vocabulary.instrument_lower_is_better(outcome.instrument) is None:
            suggestion = self.vocabulary.suggest("instrument", outcome.instrument)
            hint = f"; did you mean {suggestion!r}?" if suggestion else ""
            self.add((*path, "instrument"), f"unknown instrument {outcome.instrument!r}{hint}",
                     "a vocabulary instrument, or lower_is_better: true/false on the outcome")

    def _check_results(self, outcome: Outcome, path: Path_, arms: dict[str, dict[str, Any]]) -> None:
        if len(outcome.results) < 2:
            self.add((*path, "results"), f"results for {len(outcome.results)} arm(s)",
                     "results for at least two arms, or a precomputed effect")
        kinds = {arm_id: self._result_kind(result, (*path, "results", arm_id), False)
                 for arm_id, result in outcome.results.items()}
        found = {k for k in kinds.values() if k}
        if len(found) > 1:
            self.add((*path, "results"), f"arms report different kinds of data ({', '.join(sorted(found))})",
                     "the same kind of data for every arm of an outcome")
        for arm_id, result in outcome.results.items():
            self._check_plausible(result, (*path, "results", arm_id), arms.get(arm_id))
        if found == {"msd"}:
            self._warn_large_effect(outcome, path)

    def _result_kind(self, result: Result, path: Path_, n_only: bool) -> str | None:
        present = {name for name, value in result.model_dump().items() if value is not None}
        if n_only:
            extra = present - {"n"}
            if extra:
                self.add((*path, sorted(extra)[0]), "per-arm data next to a precomputed effect or statistic",
                         "only n per arm when the outcome has precomputed or statistic")
            return None
        matches = [kind for kind, names in DATA_KINDS.items() if present == set(names)]
        if matches:
            return matches[0]
        partial = [kind for kind, names in DATA_KINDS.items() if present & (set(names) - {"n"})]
        if len(partial) > 1:
            self.add(path, f"more than one kind of data ({', '.join(partial)})", _kinds_text())
        elif partial:
            missing = sorted(set(DATA_KINDS[partial[0]]) - present)
            self.add((*path, missing[0]), f"{partial[0]} data without {', '.join(missing)}", _kinds_text())
        else:
            self.add(path, "no outcome data", _kinds_text())
        return None

    def _check_plausible(self, result: Result, path: Path_, arm: dict[str, Any] | None) -> None:
        for name in ("sd", "change_sd"):
            value = getattr(result, name)
            if value is not None and not value > 0:
                self.add((*path, name), f"{name} is {value:g}", "a standard deviation > 0")
            elif value is not None and value < MIN_SPREAD:
                self.add((*path, name), f"{name} {value:g} is implausibly small",
                         f"a standard deviation of at least {MIN_SPREAD:g}")
        self._check_numbers(result, path)
        if result.n is not None and result.n < 2:
            self.add((*path, "n"), f"n is {result.n:g}", "n >= 2")
        for name in ("n", "events"):
            value = getattr(result, name)
            if value is not None and math.isfinite(value) and value != round(value):
                # databases store effective or averaged counts; a hand-written fraction is a typo
                self.add((*path, name), f"{name} is {value:g}, not a whole number", "a count of participants",
                         "warning" if self.imported else "error")
        if result.events is not None:
            if result.events < 0:
                self.add((*path, "events"), f"events is {result.events:g}", "0 or more events")
            elif result.n is not None and result.events > result.n:
                self.add((*path, "events"), f"events ({result.events:g}) > n ({result.n:g})", "events <= n")
        randomized = arm["arm"].randomized if arm else None
        if randomized is not None and result.n is not None and result.n > randomized:
            self.add((*path, "n"), f"n ({result.n:g}) > randomized ({randomized}) of arm {arm['arm'].id!r}",
                     "n analysed <= n randomized")
        for mean, sd in (("mean", "sd"), ("change_mean", "change_sd")):
            m, s = getattr(result, mean), getattr(result, sd)
            if m is not None and s is not None and 0 < s < 0.01 * abs(m):
                self.add((*path, sd), f"{sd} {s:g} is below 1% of the mean {m:g}",
                         "a standard deviation, not a standard error", "warning")

    def _warn_large_effect(self, outcome: Outcome, path: Path_) -> None:
        results = list(outcome.results.items())
        for i, (a, ra) in enumerate(results):
            for b, rb in results[i + 1:]:
                values = (ra.mean, rb.mean, ra.sd, rb.sd, ra.n, rb.n)
                if None in values or not all(_plausible(v) for v in values) or min(ra.n, rb.n) < 1 or ra.n + rb.n <= 2:
                    continue
                pooled = math.sqrt(((ra.n - 1) * ra.sd**2 + (rb.n - 1) * rb.sd**2) / (ra.n + rb.n - 2))
                if pooled > 0 and abs(ra.mean - rb.mean) / pooled > LARGE_G:
                    d = abs(ra.mean - rb.mean) / pooled
                    self.add((*path, "results"), f"very large effect between {a} and {b} (|d| = {d:.2f})",
                             f"|g| <= {LARGE_G:g}; check means and SDs", "warning")

    def _check_precomputed(self, outcome: Outcome, path: Path_, arms: dict[str, dict[str, Any]]) -> None:
        pre = outcome.precomputed
        assert pre is not None
        ppath = (*path, "precomputed")
        self._check_numbers(pre, ppath)
        for i, arm_id in enumerate(pre.arms):
            if arm_id not in arms:
                self.add((*ppath, "arms", i), f"unknown arm {arm_id!r}", _arm_list(arms))
        if pre.arms[0] == pre.arms[1]:
            self.add((*ppath, "arms"), "an arm compared with itself", "two different arms")
        has_ci = pre.ci_lower is not None or pre.ci_upper is not None
        if (pre.se is None) == (not has_ci) or (has_ci and None in (pre.ci_lower, pre.ci_upper)):
            self.add(ppath, "precomputed effect needs either se or both ci_lower and ci_upper",
                     "{g, se} or {g, ci_lower, ci_upper}")
        if pre.se is not None and not pre.se > 0:
            self.add((*ppath, "se"), f"se is {pre.se:g}", "a standard error > 0")
        elif pre.se is not None and pre.se < MIN_SPREAD:
            self.add((*ppath, "se"), f"se {pre.se:g} is implausibly small",
                     f"a standard error of at least {MIN_SPREAD:g}")
        if pre.ci_lower is not None and pre.ci_upper is not None and not pre.ci_lower < pre.g < pre.ci_upper:
            self.add((*ppath, "g"), f"g {pre.g:g} is not inside its CI [{pre.ci_lower:g}, {pre.ci_upper:g}]",
                     "ci_lower < g < ci_upper")
        if math.isfinite(pre.g) and LARGE_G < abs(pre.g) <= MAX_VALUE:
            self.add((*ppath, "g"), f"very large effect (g = {pre.g:g})", f"|g| <= {LARGE_G:g}", "warning")
        for arm_id, result in outcome.results.items():
            self._result_kind(result, (*path, "results", arm_id), True)
            self._check_plausible(result, (*path, "results", arm_id), arms.get(arm_id))

    def _check_statistic(self, outcome: Outcome, path: Path_, arms: dict[str, dict[str, Any]]) -> None:
        stat = outcome.statistic
        assert stat is not None
        spath = (*path, "statistic")
        self._check_numbers(stat, spath)
        given = [name for name in ("t", "f", "p") if getattr(stat, name) is not None]
        if len(given) != 1:
            self.add(spath, f"{len(given)} statistics given", "exactly one of t, f, p")
        if stat.f is not None and stat.f < 0:
            self.add((*spath, "f"), f"F is {stat.f:g}", "F >= 0")
        if stat.p is not None and not 0 < stat.p < 1:  # p = 1 (t = 0) is refused by the effect formulas too
            self.add((*spath, "p"), f"p is {stat.p:g}", "0 < p < 1")
        if stat.favours not in outcome.results:
            self.add((*spath, "favours"), f"favours {stat.favours!r}, which has no result",
                     f"one of the two arms in results ({', '.join(outcome.results) or 'none'})")
        if len(outcome.results) != 2:
            self.add((*path, "results"), f"results for {len(outcome.results)} arm(s)", "n for exactly two arms")
        for arm_id, result in outcome.results.items():
            rpath = (*path, "results", arm_id)
            self._result_kind(result, rpath, True)
            if result.n is None:
                self.add((*rpath, "n"), "required field is missing", "n of the arm for the statistic")
            self._check_plausible(result, rpath, arms.get(arm_id))
        self._warn_large_statistic(outcome, spath)

    def _warn_large_statistic(self, outcome: Outcome, spath: Path_) -> None:
        """The size of effect a statistic implies, |d| ~ |t| sqrt(1/n1 + 1/n2), flagged as for means (t = 50
        with 50 per arm gives g = 9.6; p = 1e-320 gives 337). For p the normal quantile stands in for t's: it is
        smaller, so the approximation never raises a warning that the exact value would not."""
        stat = outcome.statistic
        assert stat is not None
        ns = [r.n for r in outcome.results.values()]
        if len(ns) != 2 or not all(n is not None and _plausible(n) and n >= 2 for n in ns):
            return
        if stat.t is not None and _plausible(stat.t):
            t, name = abs(stat.t), "t"
        elif stat.f is not None and _plausible(stat.f) and stat.f >= 0:
            t, name = math.sqrt(stat.f), "f"
        elif stat.p is not None and 0 < stat.p / 2 and stat.p < 1:
            t, name = -NormalDist().inv_cdf(stat.p / 2), "p"
        else:
            return
        d = t * math.sqrt(1 / ns[0] + 1 / ns[1])  # type: ignore[operator]
        if d > LARGE_G:
            self.add((*spath, name), f"very large effect implied by {name} = {getattr(stat, name):g} (|d| = {d:.2f})",
                     f"|g| <= {LARGE_G:g}; check the statistic and the arms' n", "warning")

    def _check_comparisons(self, trial: Trial, arms: dict[str, dict[str, Any]]) -> None:
        if trial.comparisons is None:
            self._check_default_comparisons(arms)
            return
        seen: set[tuple[str, str]] = set()
        for i, pair in enumerate(trial.comparisons):
            for j, arm_id in enumerate(pair):
                if arm_id not in arms:
                    self.add(("comparisons", i, j), f"unknown arm {arm_id!r} in a comparison", _arm_list(arms))
            kinds = [arms[a]["kind"] if a in arms else None for a in pair]
            if kinds[0] == "control" and kinds[1] not in ("control", None):
                self.add(("comparisons", i), f"control arm {pair[0]!r} listed first, against {pair[1]!r}",
                         f"[{pair[1]}, {pair[0]}]: the tested arm first, its comparator second",
                         "warning" if self.imported else "error")  # a database's own orientation is kept
            if pair[0] == pair[1]:
                self.add(("comparisons", i), "an arm compared with itself", "two different arms")
            if pair in seen or pair[::-1] in seen:
                self.add(("comparisons", i), f"comparison {list(pair)} listed twice", "each pair once")
            seen.add(pair)

    def _check_default_comparisons(self, arms: dict[str, dict[str, Any]]) -> None:
        controls = [a for a, info in arms.items() if info["kind"] == "control"]
        therapies = [a for a, info in arms.items() if info["kind"] == "therapy"]
        if controls and not therapies and len(arms) >= 2 and None not in [i["kind"] for i in arms.values()]:
            self.add(("arms",), "no therapy arm, so no comparison is made by default",
                     "a therapy arm, or comparisons: [[arm, arm], ...] listed explicitly")
        if controls:
            return
        for arm_id, info in arms.items():
            if info["kind"] == "therapy":
                self.add(("arms", info["index"], "approach"),
                         f"therapy arm {arm_id!r} has no control arm to be compared with",
                         "a control arm, or comparisons: [[arm, arm], ...] listed explicitly")
                return


def _salvage(value: dict[str, Any], paths: list[Path_]) -> Trial | None:
    """The trial without the values at ``paths`` (optional fields only), if that validates."""
    import copy

    trimmed = copy.deepcopy(value)
    for path in paths:
        parent: Any = trimmed
        for part in path[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                return None
        if not path or not isinstance(parent, dict):
            return None
        parent.pop(path[-1], None)
    try:
        return Trial.model_validate(trimmed)
    except ValidationError:
        return None


def _kind_of(value: Any) -> str:
    """'a list', 'a number', 'text' ...: what a YAML value is, in a reviewer's words."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {"str": "text", "list": "a list"}.get(type(value).__name__, f"a {type(value).__name__}")


def _shown(value: Any) -> str:
    """The repr of an offending value, long text and long integers cut so that a message stays one line."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_VALUE:
        return _number_text(value)
    return clip(repr(value))


def _number_text(value: Any) -> str:
    """A number for a message in ``%g`` form; an integer too long for a float (YAML reads 400 digits as one
    int) as its first digits and its length."""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        return f"{value:g}"
    except OverflowError:
        digits = str(abs(value))
        return f"{'-' if value < 0 else ''}{digits[:6]}... ({len(digits)} digits)"


def _plausible(value: float) -> bool:
    return math.isfinite(value) and abs(value) <= MAX_VALUE


def _model_for(path: Path_) -> str:
    names = [p for p in path if isinstance(p, str)]
    if not names:
        return "Trial"
    if names[0] == "risk_of_bias":
        return "RiskOfBias"
    if names[0] == "source":
        return "Source"
    if names[0] == "arms":
        return "Arm"
    if names[0] == "outcomes":
        if len(names) == 1:
            return "Outcome"
        return {"timepoint": "Timepoint", "precomputed": "Precomputed", "statistic": "Statistic",
                "results": "Result"}.get(names[1], "Outcome")
    return "Trial"


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in ("str", "int", "float", "bool", "none") or "[" in part)


def _expected_for(kind: str) -> str:
    if kind.startswith("int"):
        return "a whole number"
    if kind.startswith("float"):
        return "a number"
    if kind.startswith("bool"):
        return "true or false"
    if kind.startswith("string"):
        return "text"
    if kind in ("literal_error", "enum"):
        return "one of the listed values"
    if kind.startswith(("list", "tuple")):
        return "a list"
    if kind.startswith(("dict", "model")):
        return "a mapping"
    return "a valid value"


def _arm_list(arms: dict[str, Any]) -> str:
    return f"one of the trial's arms ({', '.join(arms) or 'none'})"


def _kinds_text() -> str:
    return "exactly one of {mean, sd, n}, {change_mean, change_sd, n}, {events, n}"
