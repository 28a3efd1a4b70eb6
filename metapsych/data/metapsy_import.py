"""Turning a Metapsy database (one row per comparison x outcome x time point) into trial files.

Rows are grouped into trials by ``study`` and into arms by (arm code, multi-arm specification), so multi-arm
trials that share a control get one control arm. Each row's numbers become per-arm results (means/SDs,
change scores or events) or, when only those exist, a precomputed g (``precalc_g`` or metapsyTools' ``.g``).
Database codes map to the vocabulary through its aliases; codes without an equivalent become ``other`` /
``other-control`` and keep the original in ``original_code``. Trial-level columns are kept as moderators.
Every row becomes an outcome result or is listed in :attr:`ImportResult.skipped` with its line and reason.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metapsych.data.metapsy import parse_flag
from metapsych.data.table import RESERVED
from metapsych.data.vocabulary import Vocabulary
from metapsych.errors import DataError, Problem

if TYPE_CHECKING:
    import pandas as pd

RANDOMIZED = (("rand_arm1", "n_randomized_arm1"), ("rand_arm2", "n_randomized_arm2"))
SESSIONS = ("n_sessions_arm1", "n_sessions_ig", "n_sessions", "psychotherapy_sessions_mean")
CITATION = ("full_ref", "reference")
ROB_COLUMNS = ("rob", "ROB")
DOMAIN_COLUMN = re.compile(r"^(sg|ac|ba|itt|d[1-5]|domain \d|rob_domain\d|rob_d\d)$")
#: columns that describe a row's numbers or arms, never kept as trial moderators
ROW_COLUMNS = frozenset(
    ["study", "condition_arm1", "condition_arm2", "multi_arm1", "multi_arm2", "outcome_type", "instrument",
     "rating", "time", "time_weeks", "format", "year", "country", "source_file", "source_line", "full_ref",
     "reference", "rob", "ROB", *SESSIONS, *(c for pair in RANDOMIZED for c in pair)]
)
_ROW_PREFIXES = ("mean_", "sd_", "n_arm", "n_change", "event_", "totaln_", "precalc_", ".", "baseline_", "bl_",
                 "m_baseline", "sd_baseline", "n_baseline", "attr_", "dropout_", "condition_arm", "intervention_group")
POST = {"post", "post-test", "posttest", "post-treatment", "end"}
FOLLOW_UP = {"fu", "follow-up", "follow up", "followup", "fu1", "fu2", "long-term"}
HIGHER_IS_BETTER_TYPES = re.compile(r"respon|remission|recover|improve", re.I)
RAW_KINDS = (("msd", ("mean", "sd", "n")), ("change", ("mean_change", "sd_change", "n_change")),
             ("binary", ("event", "totaln")))


@dataclass
class Row:
    """One converted database row: its trial, arms, outcome key and data."""

    line: int
    study: str
    arm1: tuple[str, str | None]
    arm2: tuple[str, str | None]
    key: tuple[Any, ...]
    kind: str
    data: dict[str, Any]
    lower_is_better: bool
    note: str | None = None
    switched: bool = False


@dataclass
class ImportResult:
    """Trials as plain dicts (ready to write as YAML), and the rows that could not be converted."""

    trials: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    rows_converted: int = 0


#: the study label's share of a trial id, which is also a file name (most file systems allow 255 bytes)
MAX_STUDY_SLUG = 100


def slug(text: str) -> str:
    """A file-name-safe id: ASCII lower case, digits and '-'."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


def import_metapsy(frame: pd.DataFrame, condition: str, vocabulary: Vocabulary, database: str | None = None,
                   version: str | None = None) -> ImportResult:
    """Convert a Metapsy DataFrame (from :func:`metapsych.data.metapsy.read_metapsy_csv`) into trials."""
    _require_columns(frame)
    result = ImportResult()
    file = str(frame["source_file"].iloc[0]) if len(frame) else str(frame.attrs.get("file", ""))
    bad_lines = {p.line: p for p in frame.attrs.get("problems", [])}
    orientation = _g_orientation(frame)
    converter = _RowConverter(vocabulary, condition, orientation == "oriented", file)
    rows_by_study: dict[str, list[Row]] = {}
    records = frame.to_dict("records")
    for record in records:
        line = int(record["source_line"])
        if line in bad_lines:
            p = bad_lines[line]
            result.skipped.append(Problem(file, line, p.field, f"row not converted: {p.problem}", p.expected))
            continue
        row = converter.convert(record, result.skipped)
        if row is not None:
            rows_by_study.setdefault(row.study, []).append(row)
    by_line = {int(r["source_line"]): r for r in records}
    used_ids: set[str] = set()
    binary_rob = _rob_is_binary(frame)
    for study, rows in rows_by_study.items():
        builder = _TrialBuilder(study, condition, vocabulary, file, used_ids, binary_rob)
        trial = builder.build(rows, [by_line[r.line] for r in rows], database, version, orientation, result.skipped)
        result.trials.append(trial)
        result.rows_converted += builder.converted
    result.skipped.sort(key=lambda p: p.line or 0)
    return result


def _require_columns(frame: pd.DataFrame) -> None:
    missing = [c for c in ("study", "condition_arm1", "condition_arm2") if c not in frame.columns]
    if missing:
        file = str(frame.attrs.get("file", ""))
        raise DataError([Problem(file, 1, name, "required column is missing from the header",
                                 "a Metapsy database (study, condition_arm1, condition_arm2, ...)") for name in missing])


def _rob_is_binary(frame: pd.DataFrame) -> bool:
    """Whether a numeric risk-of-bias column is coded 1 = low / 0 = high (else the Metapsy 0-4 score)."""
    import pandas as pd

    column = next((c for c in ROB_COLUMNS if c in frame.columns), None)
    if column is None:
        return False
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return bool(len(values)) and bool(values.isin([0, 1]).all())


def _g_orientation(frame: pd.DataFrame) -> str | None:
    """``"oriented"`` if the database's ``.g`` is oriented (positive = arm 1 better), ``"raw"`` if it has the
    sign of mean1 - mean2, None if the database does not tell.

    Decided from the rows with means and ``.g``: in raw databases their signs agree.
    """
    if not {".g", "mean_arm1", "mean_arm2"} <= set(frame.columns):
        return None
    rows = frame[[".g", "mean_arm1", "mean_arm2"]].dropna()
    diff = rows["mean_arm1"] - rows["mean_arm2"]
    usable = (diff != 0) & (rows[".g"] != 0)
    if not usable.any():
        return None
    agree = ((rows[".g"] > 0) == (diff > 0))[usable].mean()
    return "oriented" if agree < 0.5 else "raw"


def orient_like_import(frame: pd.DataFrame, vocabulary: Vocabulary) -> tuple[pd.DataFrame, list[int]]:
    """A Metapsy table with the directions ``import_metapsy`` gives its rows, for ``metapsych effects FILE.csv``.

    In a database whose ``.g`` is oriented (``_g_orientation``), a row without a ``lower_is_better`` of its
    own gets the direction its .g implies against its raw data (an instrument the vocabulary does not know,
    or one the database scores the other way round), and a row with no raw data whose ``precalc_g`` has the
    opposite sign of a .g with an SE (which the importer takes first) has that g turned round. In a
    database whose .g is raw, a row with no raw data has its precalc_g turned round where the g the importer
    takes (.g with an SE, else precalc_g, both raw there, turned round where lower is better) has the other
    sign. A database that does not tell is left as it is. Returns the table (a copy if anything changed) and the lines whose precalc_g was turned round.
    """
    import pandas as pd

    orientation = _g_orientation(frame)
    if orientation is None:
        return frame, []
    converter = _RowConverter(vocabulary, "", orientation == "oriented", str(frame.attrs.get("file", "")))
    directions: list[bool | None] = []
    turned: list[int] = []
    for position, record in enumerate(frame.to_dict("records")):
        kind = _raw_data(record)[0]
        explicit = _explicit_direction(record)
        inferred = _direction_from_g(record, kind) if kind is not None and orientation == "oriented" else None
        directions.append(explicit if explicit is not None else inferred)
        if kind is None and _turned_round(record, orientation, converter):
            turned.append(position)
    if all(d is None for d in directions) and not turned:
        return frame, []
    out = frame.copy()
    out["lower_is_better"] = pd.Series(directions, index=out.index, dtype=object)
    rows = out.index[turned]
    out.loc[rows, "precalc_g"] = -out.loc[rows, "precalc_g"]
    if {"precalc_ci_lower", "precalc_ci_upper"} <= set(out.columns):
        lower, upper = out.loc[rows, "precalc_ci_lower"].copy(), out.loc[rows, "precalc_ci_upper"].copy()
        out.loc[rows, "precalc_ci_lower"], out.loc[rows, "precalc_ci_upper"] = -upper, -lower
    return out, [int(line) for line in out.loc[rows, "source_line"]]


def _turned_round(record: dict[str, Any], orientation: str, converter: _RowConverter) -> bool:
    """Whether a row without raw data has a precalc_g that the importer would take with the other sign."""
    precalc = _number(record, "precalc_g")
    if precalc is None:
        return False
    g, g_se = _number(record, ".g"), _number(record, ".g_se")
    taken = g if g is not None and g_se is not None and g_se > 0 else precalc  # the importer's source
    if orientation == "raw":
        instrument = str(_value(record, "instrument") or _value(record, "outcome_type") or "unspecified")
        taken = -taken if converter.lower_is_better(record, instrument, "precomputed") else taken
    return taken * precalc < 0


def _explicit_direction(record: dict[str, Any]) -> bool | None:
    """The row's own ``lower_is_better`` cell (``parse_flag``), or None."""
    return parse_flag(record.get("lower_is_better"))


def _blank(value: Any) -> bool:
    """An empty cell: None, NaN or blank text."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        (isinstance(value, str) and not value.strip())


def _value(record: dict[str, Any], name: str) -> Any:
    value = record.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _number(record: dict[str, Any], name: str) -> float | None:
    value = _value(record, name)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


class _RowConverter:
    """Turns one database row into a :class:`Row`, or records why it cannot."""

    def __init__(self, vocabulary: Vocabulary, condition: str, oriented: bool, file: str) -> None:
        self.vocabulary, self.condition, self.oriented, self.file = vocabulary, condition, oriented, file

    def convert(self, record: dict[str, Any], skipped: list[Problem]) -> Row | None:
        line = int(record["source_line"])

        def skip(column: str, reason: str, expected: str) -> None:
            skipped.append(Problem(self.file, line, column, f"row not converted: {reason}", expected))

        study = _value(record, "study")
        if study is None:
            skip("study", "no study label", "the study's label, e.g. 'Smith, 2019'")
            return None
        codes = [_value(record, "condition_arm1"), _value(record, "condition_arm2")]
        for i, code in enumerate(codes, 1):
            if code is None:
                skip(f"condition_arm{i}", "the arm has no condition code", "a treatment or control code")
                return None
        arm1 = (str(codes[0]).strip(), _text(record, "multi_arm1"))
        arm2 = (str(codes[1]).strip(), _text(record, "multi_arm2"))
        if arm1 == arm2:
            skip("multi_arm2", "both arms have the same code and multi-arm label, so they cannot be told apart",
                 "different multi_arm1/multi_arm2 labels for two arms of the same kind")
            return None
        time = self._time(record)
        if time is None:
            skip("time", f"unknown time point {_value(record, 'time')!r}", "post or follow-up")
            return None
        found = self._data(record)
        if found is None:
            skip("(row)", "no usable numbers (means/SDs, change scores, events or a g with its SE)",
                 "complete data for one data kind")
            return None
        kind, data, note = found
        instrument = str(_value(record, "instrument") or _value(record, "outcome_type") or "unspecified")
        rating = _value(record, "rating")
        weeks = _number(record, "time_weeks")
        key = (instrument, time, weeks if weeks is not None and weeks >= 0 else None, rating,
               _value(record, "outcome_type"))
        return Row(line, str(study).strip(), arm1, arm2, key, kind, data,
                   self.lower_is_better(record, instrument, kind), note)

    def _time(self, record: dict[str, Any]) -> str | None:
        value = _value(record, "time")
        if value is None:
            return "post"
        text = str(value).strip().lower()
        if text in POST or text.startswith("post"):
            return "post"
        if text in FOLLOW_UP or text.startswith(("fu", "follow")):
            return "follow-up"
        return None

    def _data(self, record: dict[str, Any]) -> tuple[str, dict[str, Any], str | None] | None:
        """The first complete and plausible kind of data of the row."""
        kind, values, reasons = _raw_data(record)
        if kind is not None:
            return kind, values, ("; ".join(reasons) or None)
        for g_col, se_col, source in ((".g", ".g_se", "metapsy .g"), ("precalc_g", "precalc_g_se", "precalc_g")):
            g, se = _number(record, g_col), _number(record, se_col)
            if g is not None and se is not None and se > 0:
                reasons.append(f"g and SE from the database's {source} column")
                return "precomputed", {"g": g, "se": se, "source": source}, "; ".join(reasons)
        return None

    def lower_is_better(self, record: dict[str, Any], instrument: str, kind: str) -> bool:
        """The row's direction: its own ``lower_is_better`` cell, else an oriented .g against its raw data,
        else the outcome type (events of response or remission), else the vocabulary (else lower)."""
        explicit = _explicit_direction(record)
        if explicit is not None:
            return explicit
        inferred = self._direction_from_g(record, kind)
        if inferred is not None:
            return inferred
        described = " ".join(str(_value(record, c) or "") for c in ("outcome_type", "dich", "dich_type", "dich_paper"))
        if kind == "binary" and HIGHER_IS_BETTER_TYPES.search(described):
            return False
        known = self.vocabulary.instrument_lower_is_better(instrument)
        return True if known is None or kind == "binary" else known

    def _direction_from_g(self, record: dict[str, Any], kind: str) -> bool | None:
        """In databases whose .g is oriented, the sign of .g against the raw difference gives the direction."""
        return _direction_from_g(record, kind) if self.oriented else None


def _raw_data(record: dict[str, Any]) -> tuple[str | None, dict[str, Any], list[str]]:
    """The row's first complete and plausible kind of raw data (means, change scores, events in
    metapsyTools' order) with its values, and why earlier complete kinds were not usable; (None, {}, reasons)
    if there is none."""
    reasons = []
    for kind, columns in RAW_KINDS:
        values = {f"{c}_arm{i}": _number(record, f"{c}_arm{i}") for c in columns for i in (1, 2)}
        if any(v is None for v in values.values()):
            continue
        problem = _implausible(kind, values)
        if problem is None:
            return kind, values, reasons
        reasons.append(f"{kind} data not usable ({problem})")
    return None, {}, reasons


def _direction_from_g(record: dict[str, Any], kind: str) -> bool | None:
    """Whether lower is better, from the sign of an oriented .g against the raw difference of ``kind``
    (None without a .g, for precomputed data, or where either is 0)."""
    g = _number(record, ".g")
    if g is None or g == 0:
        return None
    if kind == "msd":
        diff = _number(record, "mean_arm1") - _number(record, "mean_arm2")  # type: ignore[operator]
    elif kind == "change":
        diff = _number(record, "mean_change_arm1") - _number(record, "mean_change_arm2")  # type: ignore[operator]
    elif kind == "binary":
        diff = (_number(record, "event_arm1") / _number(record, "totaln_arm1")  # type: ignore[operator]
                - _number(record, "event_arm2") / _number(record, "totaln_arm2"))  # type: ignore[operator]
    else:
        return None
    return None if diff == 0 else (g > 0) != (diff > 0)


def _implausible(kind: str, values: dict[str, float]) -> str | None:
    for i in (1, 2):
        n = values.get(f"n_arm{i}", values.get(f"n_change_arm{i}", values.get(f"totaln_arm{i}")))
        if n is not None and n < 2:
            return f"n of arm {i} is {n:g}"
        sd = values.get(f"sd_arm{i}", values.get(f"sd_change_arm{i}"))
        if sd is not None and sd <= 0:
            return f"SD of arm {i} is {sd:g}"
        events = values.get(f"event_arm{i}")
        if events is not None and not 0 <= events <= values[f"totaln_arm{i}"]:
            return f"events of arm {i} ({events:g}) outside 0..n"
    return None


def _finite(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def _text(record: dict[str, Any], name: str) -> str | None:
    value = _value(record, name)
    return None if value is None else str(value).strip()


def _clean(value: Any) -> Any:
    """A YAML-friendly scalar: integral floats as int."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


class _TrialBuilder:
    """Builds one trial dict from the converted rows of one study."""

    def __init__(self, study: str, condition: str, vocabulary: Vocabulary, file: str, used_ids: set[str],
                 binary_rob: bool) -> None:
        self.study, self.condition, self.vocabulary, self.file = study, condition, vocabulary, file
        self.binary_rob = binary_rob
        base = f"{condition}-{slug(study)[:MAX_STUDY_SLUG].rstrip('-')}"
        trial_id, n = base, 2
        while trial_id in used_ids:
            trial_id, n = f"{base}-{n}", n + 1
        used_ids.add(trial_id)
        self.id = trial_id
        self.arms: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.notes: list[str] = []
        self.converted = 0

    def build(self, rows: list[Row], records: list[dict[str, Any]], database: str | None, version: str | None,
              orientation: str | None, skipped: list[Problem]) -> dict[str, Any]:
        """The trial dict (keys in the order they are written)."""
        by_line = {row.line: record for row, record in zip(rows, records)}
        rows = self._orient(rows, skipped)
        for row in rows:
            first, second = (row.arm2, row.arm1) if row.switched else (row.arm1, row.arm2)
            self._arm(first, by_line[row.line], 1)
            self._arm(second, by_line[row.line], 2)
        comparisons = list(dict.fromkeys((self.arms[r.arm1]["id"], self.arms[r.arm2]["id"]) for r in rows))
        outcomes = self._outcomes(rows, comparisons, orientation)
        self._check_randomized(outcomes)
        first = records[0]
        trial: dict[str, Any] = {"id": self.id, "study": self.study}
        citation = next((_text(first, c) for c in CITATION if _text(first, c)), None)
        if citation:
            trial["citation"] = citation
        year = _number(first, "year")
        if year is not None:
            trial["year"] = int(year)
        if _text(first, "country"):
            trial["country"] = _text(first, "country")
        trial["condition"] = self.condition
        rob = self._risk_of_bias(first)
        if rob:
            trial["risk_of_bias"] = rob
        trial["arms"] = [{k: v for k, v in arm.items() if v is not None} for arm in self.arms.values()]
        trial["outcomes"] = outcomes
        trial["comparisons"] = [list(pair) for pair in comparisons]
        moderators = _moderators(records)
        if moderators:
            trial["moderators"] = moderators
        trial["source"] = {k: v for k, v in {"database": database, "version": version, "study": self.study,
                                             "rows": [r.line for r in rows]}.items() if v is not None}
        if self.notes:
            trial["notes"] = list(dict.fromkeys(self.notes))
        self.converted = len(rows)
        return trial

    def _arm(self, key: tuple[str, str | None], record: dict[str, Any], position: int) -> None:
        code, multi = key
        if key not in self.arms:
            approach = self.vocabulary.lookup("approach", code, self.condition)
            if approach is None:
                approach = "other" if position == 1 else "other-control"
            base = slug(multi) if multi else approach
            arm_id, n = base, 2
            while arm_id in {a["id"] for a in self.arms.values()}:
                arm_id, n = f"{base}-{n}", n + 1
            self.arms[key] = {"id": arm_id, "approach": approach, "label": None,
                              "original_code": code, "multi_arm": multi, "format": None, "sessions": None,
                              "randomized": None, "cluster_size": None, "icc": None}
        arm = self.arms[key]
        randomized = next((_number(record, c) for c in RANDOMIZED[position - 1] if _number(record, c)), None)
        if arm["randomized"] is None and randomized is not None and randomized.is_integer() and randomized >= 2:
            arm["randomized"] = int(randomized)
        icc, size = _number(record, f"icc_arm{position}"), _number(record, f"cluster_size_arm{position}")
        if arm["icc"] is None and icc is not None and size is not None and 0 <= icc < 1 and size >= 1:
            arm["icc"], arm["cluster_size"] = _clean(icc), _clean(size)  # the arm's design effect (effects)
        elif (icc is None) != (size is None) or (icc is not None and size is not None and arm["icc"] is None):
            self.notes.append(f"line {record['source_line']}: icc_arm{position} {icc} and cluster_size_arm{position} "
                              f"{size} not used (the design effect needs both, ICC in [0, 1), size >= 1)")
        if position == 1:
            self._arm1_details(arm, record)

    def _arm1_details(self, arm: dict[str, Any], record: dict[str, Any]) -> None:
        fmt = _text(record, "format")
        if fmt and arm["format"] is None:
            arm["format"] = self.vocabulary.lookup("format", fmt) or "other"
            if arm["format"] == "other" and fmt.lower() not in ("oth", "other"):
                arm["label"] = arm["label"] or f"format: {fmt}"
        sessions = next((_number(record, c) for c in SESSIONS if _number(record, c) is not None), None)
        if sessions is not None and sessions >= 0 and arm["sessions"] is None:
            arm["sessions"] = _clean(sessions)

    def _orient(self, rows: list[Row], skipped: list[Problem]) -> list[Row]:
        """Drop arm-switched and exact duplicates; turn other reversed rows round to the first orientation."""
        kept: list[Row] = []
        seen: dict[tuple[Any, ...], Row] = {}
        pairs: set[tuple[Any, Any]] = set()
        for row in rows:
            pair, reverse = (row.arm1, row.arm2), (row.arm2, row.arm1)
            exact = (pair, row.key, row.kind, tuple(sorted(row.data.items(), key=str)))
            if (reverse, row.key) in seen:
                first = seen[(reverse, row.key)]
                skipped.append(Problem(self.file, row.line, "condition_arm1",
                                       f"row not converted: arm-switched duplicate of line {first.line}",
                                       "each comparison once"))
                continue
            if exact in seen:
                skipped.append(Problem(self.file, row.line, "(row)",
                                       f"row not converted: exact duplicate of line {seen[exact].line}",
                                       "each comparison once"))
                continue
            if reverse in pairs:
                row = _switched(row)
                self.notes.append(f"line {row.line}: arms given in reverse order; switched to match the "
                                  "trial's other rows")
            seen[((row.arm1, row.arm2), row.key)] = row
            seen[exact] = row
            pairs.add((row.arm1, row.arm2))
            kept.append(row)
        return kept

    def _outcomes(self, rows: list[Row], comparisons: list[tuple[str, str]],
                  orientation: str | None) -> list[dict[str, Any]]:
        outcomes: list[dict[str, Any]] = []
        merged_pairs: list[set[tuple[str, str]]] = []
        for row in rows:
            a, b = self.arms[row.arm1]["id"], self.arms[row.arm2]["id"]
            if row.kind == "precomputed":
                outcomes.append(self._precomputed_outcome(row, a, b, orientation))
                merged_pairs.append(set())
                continue
            results = _results(row)
            target = self._merge_target(outcomes, merged_pairs, row, a, b, results, comparisons)
            if target is None:
                outcomes.append(self._outcome_head(row))
                outcomes[-1]["results"] = {}
                merged_pairs.append(set())
                target = len(outcomes) - 1
            outcomes[target]["results"].update({a: results[0], b: results[1]})
            outcomes[target].setdefault("_lines", []).append(row.line)
            merged_pairs[target].add((a, b))
        for outcome in outcomes:
            lines = outcome.pop("_lines", None)
            if lines and len(lines) > 1:
                outcome["note"] = "; ".join(filter(None, [outcome.get("note"), f"rows {', '.join(map(str, lines))}"]))
        return outcomes

    def _merge_target(self, outcomes: list[dict[str, Any]], merged_pairs: list[set[tuple[str, str]]], row: Row,
                      a: str, b: str, results: tuple[dict, dict], comparisons: list[tuple[str, str]]) -> int | None:
        head = self._outcome_head(row)
        for index, outcome in enumerate(outcomes):
            if "results" not in outcome or outcome.get("_kind") != row.kind:
                continue
            if {k: v for k, v in outcome.items() if k in head and k != "note"} != \
                    {k: v for k, v in head.items() if k != "note"}:
                continue
            current = outcome["results"]
            if any(arm in current and current[arm] != data for arm, data in ((a, results[0]), (b, results[1]))):
                continue
            arms = set(current) | {a, b}
            implied = {p for p in comparisons if p[0] in arms and p[1] in arms}
            if implied == merged_pairs[index] | {(a, b)}:
                return index
        return None

    def _outcome_head(self, row: Row) -> dict[str, Any]:
        instrument, time, weeks, rating, outcome_type = row.key
        head: dict[str, Any] = {"instrument": instrument, "timepoint": {"label": time}}
        if weeks is not None:
            head["timepoint"]["weeks"] = _clean(weeks)
        if rating is not None:
            head["rating"] = self.vocabulary.lookup("rating", str(rating)) or "other"
        head["lower_is_better"] = row.lower_is_better
        if outcome_type is not None:
            head["type"] = str(outcome_type)
        if row.note:
            head["note"] = row.note
        head["_kind"] = row.kind
        return head

    def _precomputed_outcome(self, row: Row, a: str, b: str, orientation: str | None) -> dict[str, Any]:
        """The outcome of a precomputed g, oriented (positive = arm 1 better). A ``.g`` is raw unless the
        database's .g is oriented (metapsyTools' own convention where the database does not tell); a
        ``precalc_g`` is raw only in a database whose .g is raw, else oriented: the Metapsy standard, as
        ``export_metapsy`` writes it and ``metapsych effects`` reads it."""
        outcome = self._outcome_head(row)
        g = row.data["g"]
        raw = orientation == "raw" or (orientation is None and row.data["source"] == "metapsy .g")
        if raw:
            g = -g if row.lower_is_better else g
        outcome["precomputed"] = {"arms": [a, b], "g": _clean(g), "se": _clean(row.data["se"]),
                                  "source": row.data["source"]}
        return outcome

    def _check_randomized(self, outcomes: list[dict[str, Any]]) -> None:
        by_id = {arm["id"]: arm for arm in self.arms.values()}
        for outcome in outcomes:
            outcome.pop("_kind", None)
            for arm_id, result in outcome.get("results", {}).items():
                arm = by_id[arm_id]
                if arm["randomized"] is not None and result.get("n", 0) > arm["randomized"]:
                    self.notes.append(f"arm {arm_id}: randomized n {arm['randomized']} is below an analysed n "
                                      f"({result['n']}); randomized n not kept")
                    arm["randomized"] = None

    def _risk_of_bias(self, first: dict[str, Any]) -> dict[str, Any] | None:
        column = next((c for c in ROB_COLUMNS if c in first), None)
        value = _value(first, column) if column else None
        domains = {k: _clean(v) for k, v in first.items() if DOMAIN_COLUMN.match(str(k)) and _value(first, k) is not None}
        if value is None and not domains:
            return None
        rob: dict[str, Any] = {}
        if isinstance(value, (int, float)):
            rob["tool"] = "other" if self.binary_rob else "metapsy"
            rob["overall"] = ("low" if value >= 1 else "high") if self.binary_rob else ("low" if value > 2 else "high")
            rob["score"] = _clean(value)
        elif value is not None:
            rob["tool"] = "rob2"
            code = self.vocabulary.lookup("risk_of_bias", str(value))
            if code:
                rob["overall"] = code
        else:
            rob["tool"] = "other"
        if domains:
            rob["domains"] = domains
        if value is not None:
            rob["original"] = _clean(value)
        return rob


def _switched(row: Row) -> Row:
    data = {}
    for name, value in row.data.items():
        if name.endswith("_arm1"):
            data[name[:-1] + "2"] = value
        elif name.endswith("_arm2"):
            data[name[:-1] + "1"] = value
        else:
            data[name] = value
    if row.kind == "precomputed":
        data["g"] = -data["g"]
    return Row(row.line, row.study, row.arm2, row.arm1, row.key, row.kind, data, row.lower_is_better, row.note, True)


def _results(row: Row) -> tuple[dict[str, Any], dict[str, Any]]:
    out = []
    for i in (1, 2):
        d = row.data
        if row.kind == "msd":
            out.append({"mean": d[f"mean_arm{i}"], "sd": d[f"sd_arm{i}"], "n": d[f"n_arm{i}"]})
        elif row.kind == "change":
            out.append({"change_mean": d[f"mean_change_arm{i}"], "change_sd": d[f"sd_change_arm{i}"],
                        "n": d[f"n_change_arm{i}"]})
        else:
            out.append({"events": d[f"event_arm{i}"], "n": d[f"totaln_arm{i}"]})
    return tuple({k: _clean(v) for k, v in r.items()} for r in out)  # type: ignore[return-value]


def _moderators(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Trial-level columns (constant or joined when they vary) under snake_case names."""
    moderators: dict[str, Any] = {}
    for column in records[0]:
        if column in ROW_COLUMNS or str(column).startswith(_ROW_PREFIXES) or DOMAIN_COLUMN.match(str(column)):
            continue
        values = list(dict.fromkeys(_clean(_value(r, column)) for r in records if _finite(_value(r, column))))
        if not values:
            continue
        name = re.sub(r"[^a-z0-9]+", "_", str(column).lower()).strip("_")
        if name in RESERVED:  # a table column (Country, rob_score, icc_arm1, ...): the trial's own fields hold it
            continue
        moderators[name] = values[0] if len(values) == 1 else " | ".join(map(str, values))
    return moderators
