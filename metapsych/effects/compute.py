"""Effect sizes for every row of a comparison table, with the formula used or the reason there is none.

Per row, the first complete kind of data in this priority is used (``formula`` names it); ranks 1-4 are
metapsyTools' order (``calculateEffectSizes``: means, change scores, binary, precalculated), which the
Metapsy importer follows too:

=====  ==========================================  ==================================================
 rank  data                                        formula (measure g; md/or/rr/rd analogous)
=====  ==========================================  ==================================================
 1     mean, sd, n of both arms                    ``smd_from_means``   (``md_from_means``)
 2     change-score mean, sd, n of both arms       ``smd_from_change``  (``md_from_change``)
 3     events and totals of both arms              ``smd_from_logor[_cc]`` (logit method, when
                                                   ``convert_binary``); ``logor/logrr/rd_from_events[_cc]``
 4     precalc_g with precalc_g_se                 ``smd_precalc_se``
 5     precalc_g with a 95% CI                     ``smd_precalc_ci``   (SE = CI width / 3.92)
 6     t_value + n + stat_favours                  ``smd_from_t``
 7     f_value (F(1, df)) + n + stat_favours       ``smd_from_f``       (t = sqrt(F))
 8     p_value (exact, two-sided) + n + favours    ``smd_from_p``
 9     precalc_log_rr with precalc_log_rr_se       ``logrr_precalc_se`` (measure rr only; oriented as given)
=====  ==========================================  ==================================================

``_cc`` marks a table with a zero cell, to which 1/2 was added in every cell (metafor ``to="only0"``).
Double-zero tables (no events, or only events, in both arms) get no OR, RR or g: ``why_missing`` says
so (metafor keeps them by default, ``drop00=FALSE``; we follow ``drop00=TRUE`` for OR/RR). RD keeps them.

**Direction.** Effects are oriented so that a positive value means arm 1 (the therapy) did better, for every
measure. For OR and RD that is the log OR (RD) of the *favourable* outcome; for RR, where lower is
better, it is the event's log RR with its sign changed, so that |yi| and vi are escalc's for the event as
counted (the favourable outcome's own log RR is another number). Raw data
(means, change scores, events) are flipped when lower is better; the direction comes from the
``lower_is_better`` column, else the vocabulary (``instrument`` for scores, ``outcome_type`` for events:
in Metapsy files the ``instrument`` of an event row is the scale the responders were defined on), else the
Metapsy convention: scores are symptom measures (lower is better), events are response/remission (higher
is better). This matches metapsyTools, checked on the depression database: ``.g`` of score rows is
(m2 - m1)/sd, and ``.g`` and ``.log_rr`` of event rows are positive when arm 1 has more events (53 of 54
rows; Kivi, 2014 is the exception, see tests/effects/test_metapsy_reproduction.py). Precalculated g is
taken as already oriented (Metapsy standard); t/F/p get their sign from ``stat_favours``.

**NNT** (measure g): Furukawa-Leucht from |g| with control event rate ``cer`` (default 0.2), as
metapsyTools; ``inf`` for g = 0. A negative g makes it a number needed to harm.

**Clustering.** An arm with an ICC and a mean cluster size (``icc``/``cluster_size`` for arm 1, as the data
layer writes them for a group-delivered therapy arm, or ``icc_arm1``/``cluster_size_arm1``; and
``icc_arm2``/``cluster_size_arm2``) has its raw-data sample size (and event counts) divided by the design
effect 1 + (m - 1) ICC before the formula is applied (Cochrane Handbook 23.1.4); the ``design_effect``
column records the larger of the two. Precalculated effects and test statistics are taken as already
analysed, so they are not adjusted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metapsych.data.metapsy import parse_flag
from metapsych.effects import binary, continuous, convert
from metapsych.effects.checks import ARMS, check_values, locations, numeric_columns
from metapsych.effects.continuous import Effects
from metapsych.effects.nnt import DEFAULT_CER, nnt_furukawa
from metapsych.errors import DataError, InputError, Problem

if TYPE_CHECKING:
    from metapsych.data.vocabulary import Vocabulary

MEASURES = ("g", "md", "or", "rr", "rd")
#: the columns ``compute_effects`` adds to the table
OUTPUT_COLUMNS = ("yi", "vi", "sei", "ci_lower", "ci_upper", "measure", "formula", "why_missing", "design_effect",
                  "nnt")
#: input columns that are an effect size or a test statistic themselves (the raw data's are not)
REPORTED_EFFECT_COLUMNS = ("precalc_g", "precalc_g_se", "precalc_ci_lower", "precalc_ci_upper", "precalc_log_rr",
                           "precalc_log_rr_se", "t_value", "f_value", "p_value", ".g", ".g_se", ".log_rr",
                           ".log_rr_se")
Z95 = 1.959963984540054
NO_DATA = {
    "g": "no effect-size data (means/SD/n, change scores, precalc g, t/F/p or events)",
    "md": "no means/SD/n or change scores for a mean difference",
    **{m: f"no event counts for measure {m}" for m in ("or", "rr", "rd")},
}

ONLY_DOT_G = (
    "only metapsyTools' .g/.g_se, which are not used (their sign convention differs between databases); "
    "give precalc_g and precalc_g_se with positive = arm1 better"
)


@dataclass(frozen=True)
class Candidate:
    """One kind of data evaluated on every row: where it is complete, and the effects it gives there."""

    formula: np.ndarray  # object array of formula names ("" where unavailable)
    available: np.ndarray  # bool
    effects: Effects
    why_not: np.ndarray  # object array: reason this kind gave nothing although some of its data is there


def compute_effects(
    table: pd.DataFrame,
    measure: str = "g",
    cer: float = DEFAULT_CER,
    convert_binary: bool = True,
    vocabulary: Vocabulary | None = None,
    file: str = "<table>",
) -> pd.DataFrame:
    """Add ``yi, vi, sei, ci_lower, ci_upper, measure, formula, why_missing, design_effect`` (and ``nnt`` for g).

    ``table`` is a comparison table (docs/architecture.md); rows are never dropped. Raises DataError
    listing every implausible number (SD <= 0, n < 2, events outside [0, n], p outside (0, 1), ...).
    ``vocabulary`` is a ``metapsych.data.vocabulary.Vocabulary``; by default the built-in one is used.
    """
    if measure not in MEASURES:
        raise InputError(f"unknown effect measure {measure!r} (expected one of {', '.join(MEASURES)})")
    values, problems = numeric_columns(table, file)
    problems += check_values(values, table, file)
    problems += _check_favours(table, file)
    if problems:
        raise DataError(sorted(problems, key=lambda p: (p.file, p.line or 0, p.field)))
    deff = _design_effects(values)
    lower = _directions(table, vocabulary)
    cands = _candidates(table, values, deff, lower, measure, convert_binary)
    yi, vi, formula, why = _choose(cands, len(table), NO_DATA[measure])
    if ".g" in table:
        only_g = (why == NO_DATA[measure]) & pd.to_numeric(table[".g"], errors="coerce").notna().to_numpy()
        why[only_g] = ONLY_DOT_G
    out = table.copy()
    out["yi"], out["vi"] = yi, vi
    out["sei"] = np.sqrt(vi)
    out["ci_lower"], out["ci_upper"] = yi - Z95 * out["sei"], yi + Z95 * out["sei"]
    out["measure"] = measure
    out["formula"] = np.where(formula == "", None, formula)
    out["why_missing"] = np.where(why == "", None, why)
    out["design_effect"] = np.where(formula_uses_raw_data(formula), np.fmax(deff[0], deff[1]), 1.0)
    if measure == "g":
        out["nnt"] = nnt_furukawa(yi, cer)
    return out


def formula_uses_raw_data(formula: np.ndarray) -> np.ndarray:
    """Whether each formula works on arm-level data (and so had the design effect applied)."""
    raw = ("_from_means", "_from_change", "_from_events", "_from_logor")
    return np.array([any(r in str(f) for r in raw) for f in formula], dtype=bool)


def _check_favours(table: pd.DataFrame, file: str) -> list[Problem]:
    if "stat_favours" not in table:
        return []
    files, lines = locations(table, file)
    fav = table["stat_favours"]
    bad = fav.notna() & ~fav.astype(str).str.strip().str.lower().isin(ARMS)
    return [
        Problem(files[i], lines[i], "stat_favours", f"unknown value {fav.iloc[i]!r}", "arm1 or arm2")
        for i in np.flatnonzero(bad.to_numpy())
    ]


def _design_effects(values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Design effect per arm (1 where no ICC or cluster size is given)."""
    out = []
    for arm in ARMS:
        icc, m = values[f"icc_{arm}"], values[f"cluster_size_{arm}"]
        if arm == "arm1":
            icc = np.where(np.isnan(icc), values["icc"], icc)
            m = np.where(np.isnan(m), values["cluster_size"], m)
        d = convert.design_effect(m, icc)
        out.append(np.where(np.isnan(d), 1.0, d))
    return out[0], out[1]


@functools.lru_cache(maxsize=1)
def _load_vocabulary() -> Vocabulary | None:
    """The built-in vocabulary (None while the data layer does not provide one)."""
    try:
        from metapsych.data.vocabulary import load_vocabulary
    except ImportError:
        return None
    return load_vocabulary()


def _directions(table: pd.DataFrame, vocabulary: Vocabulary | None) -> tuple[np.ndarray, np.ndarray]:
    """Per row, does a lower value favour arm 1: (for scores, for events)? See the module docstring."""
    n = len(table)
    explicit = [parse_flag(v) for v in table["lower_is_better"]] if "lower_is_better" in table else [None] * n
    if all(e is not None for e in explicit):
        both = np.array(explicit, dtype=bool)
        return both, both
    needs_vocab = vocabulary is None and ("instrument" in table or "outcome_type" in table)
    vocab = _load_vocabulary() if needs_vocab else vocabulary
    out = []
    for key, default in (("instrument", True), ("outcome_type", False)):
        names = table[key].tolist() if key in table else [None] * n
        looked = [_vocab_direction(vocab, name) if e is None else e for e, name in zip(explicit, names)]
        out.append(np.array([default if v is None else v for v in looked], dtype=bool))
    return out[0], out[1]


def _vocab_direction(vocab: Vocabulary | None, name: object) -> bool | None:
    if vocab is None or name is None or (isinstance(name, float) and np.isnan(name)):
        return None
    return vocab.instrument_lower_is_better(str(name))


def _choose(cands: list[Candidate], n: int, no_data: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Take, per row, the first available candidate; collect why the others were not usable."""
    yi, vi = np.full(n, np.nan), np.full(n, np.nan)
    formula = np.full(n, "", dtype=object)
    why = np.full(n, "", dtype=object)
    done = np.zeros(n, dtype=bool)
    for c in cands:
        finite = np.isfinite(c.effects.yi) & np.isfinite(c.effects.vi) & (c.effects.vi > 0)
        take = c.available & finite & ~done
        yi[take], vi[take], formula[take] = c.effects.yi[take], c.effects.vi[take], c.formula[take]
        failed = c.available & ~finite & ~done & (why == "")
        why[failed] = [f"{f} gave no finite effect (effective n too small after the design effect?)"
                       for f in c.formula[failed]]
        note = ~done & ~c.available & (c.why_not != "") & (why == "")
        why[note] = c.why_not[note]
        done |= take
    why[done] = ""
    why[~done & (why == "")] = no_data
    return yi, vi, formula, why


def _complete(
    values: dict[str, np.ndarray], cols: list[str], shared: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Rows where all of ``cols`` are present, and the reason text where only some are.

    Columns in ``shared`` (the n of the means, also used by t/F/p) alone do not make a row "incomplete".
    """
    present = np.array([~np.isnan(values[c]) for c in cols])
    full = present.all(axis=0)
    own = np.array([~np.isnan(values[c]) for c in cols if c not in shared])
    why = np.full(present.shape[1], "", dtype=object)
    for i in np.flatnonzero(own.any(axis=0) & ~full):
        why[i] = "incomplete data: missing " + ", ".join(c for c, p in zip(cols, present[:, i]) if not p)
    return full, why


def _const(n: int, text: str) -> np.ndarray:
    return np.full(n, text, dtype=object)


def _nothing(why: np.ndarray) -> Candidate:
    """A candidate that is available nowhere, with its reasons."""
    n = len(why)
    return Candidate(_const(n, ""), np.zeros(n, dtype=bool), Effects(np.full(n, np.nan), np.full(n, np.nan)),
                     why.astype(object))


def _sign(lower: np.ndarray) -> np.ndarray:
    return np.where(lower, -1.0, 1.0)


def _continuous(values, deff, lower, measure: str, prefix: str, label: str) -> Candidate:
    cols = [f"{k}_{a}" for a in ARMS for k in (f"mean{prefix}", f"sd{prefix}", f"n{prefix}")]
    full, why = _complete(values, cols, shared=("n_arm1", "n_arm2"))
    m1, s1, n1, m2, s2, n2 = (values[c] for c in cols)
    n1, n2 = n1 / deff[0], n2 / deff[1]
    func = continuous.smd if measure == "g" else continuous.md
    with np.errstate(invalid="ignore", divide="ignore"):
        es = func(m1, s1, n1, m2, s2, n2)
    name = ("smd" if measure == "g" else "md") + f"_from_{label}"
    return Candidate(np.where(full, name, ""), full, Effects(es.yi * _sign(lower), es.vi), why)


def _precalc(values: dict[str, np.ndarray]) -> list[Candidate]:
    g, se = values["precalc_g"], values["precalc_g_se"]
    lo, hi = values["precalc_ci_lower"], values["precalc_ci_upper"]
    has_g = ~np.isnan(g)
    with_se = has_g & ~np.isnan(se)
    with_ci = has_g & ~np.isnan(lo) & ~np.isnan(hi)  # used only where there is no SE
    why = np.where(has_g & ~with_se & ~with_ci, "precalc_g without precalc_g_se or a 95% CI", "")
    why = np.where(~has_g & ~(np.isnan(se) & np.isnan(lo)), "precalc_g_se or CI without precalc_g", why)
    ci_se = convert.se_from_ci(lo, hi)
    return [
        Candidate(np.where(with_se, "smd_precalc_se", ""), with_se, Effects(g, se**2), why.astype(object)),
        Candidate(np.where(with_ci, "smd_precalc_ci", ""), with_ci, Effects(g, ci_se**2), _const(len(g), "")),
    ]


def _precalc_log_rr(values: dict[str, np.ndarray]) -> Candidate:
    lrr, se = values["precalc_log_rr"], values["precalc_log_rr_se"]
    ok = ~np.isnan(lrr) & ~np.isnan(se)
    why = np.where(np.isnan(lrr) != np.isnan(se), "precalc_log_rr needs precalc_log_rr_se (and the reverse)", "")
    return Candidate(np.where(ok, "logrr_precalc_se", ""), ok, Effects(lrr, se**2), why.astype(object))


def _statistics(table: pd.DataFrame, values: dict[str, np.ndarray]) -> list[Candidate]:
    n1, n2 = values["n_arm1"], values["n_arm2"]
    fav = table["stat_favours"].astype(str).str.strip().str.lower().to_numpy() if "stat_favours" in table else None
    sign = np.full(len(n1), np.nan) if fav is None else np.select([fav == "arm1", fav == "arm2"], [1.0, -1.0], np.nan)
    with np.errstate(invalid="ignore"):
        ts = {
            "t": np.abs(values["t_value"]),
            "f": convert.t_from_f(values["f_value"]),
            "p": convert.t_from_p(values["p_value"], n1, n2),
        }
    out = []
    for key, t in ts.items():
        col = {"t": "t_value", "f": "f_value", "p": "p_value"}[key]
        has = ~np.isnan(values[col])
        ok = has & ~np.isnan(n1) & ~np.isnan(n2) & ~np.isnan(sign)
        why = np.where(has & ~ok, f"{col} needs n_arm1, n_arm2 and stat_favours", "").astype(object)
        with np.errstate(invalid="ignore", divide="ignore"):
            es = convert.smd_from_t(t * sign, n1, n2)
        out.append(Candidate(np.where(ok, f"smd_from_{key}", ""), ok, es, why))
    return out


def _events(values, deff, lower, measure: str, convert_binary: bool) -> Candidate:
    cols = ["event_arm1", "totaln_arm1", "event_arm2", "totaln_arm2"]
    full, why = _complete(values, cols)
    e1, t1, e2, t2 = (values[c] for c in cols)
    table = binary.table_from_cells(e1 / deff[0], (t1 - e1) / deff[0], e2 / deff[1], (t2 - e2) / deff[1])
    if measure == "g" and not convert_binary:
        why = np.where(full, "events not converted to g (binary conversion switched off)", why)
        return _nothing(why)
    func, name = {
        "g": (binary.log_or, "smd_from_logor"),
        "or": (binary.log_or, "logor_from_events"),
        "rr": (binary.log_rr, "logrr_from_events"),
        "rd": (binary.risk_difference, "rd_from_events"),
    }.get(measure, (None, ""))
    if func is None:
        why = np.where(full, f"events cannot give measure {measure}", why)
        return _nothing(why)
    with np.errstate(invalid="ignore", divide="ignore"):
        es = func(table)
    if measure == "g":
        es = convert.logor_to_smd(es.yi, es.vi)
    excluded = full & table.double_zero & (measure != "rd")
    why = np.where(excluded, "double zero (no events, or only events, in both arms): not estimable for "
                   + ("g from OR" if measure == "g" else measure.upper()), why)
    ok = full & ~excluded
    names = np.where(table.corrected, name + "_cc", name)
    return Candidate(np.where(ok, names, ""), ok, Effects(es.yi * _sign(lower), es.vi), why.astype(object))


def _candidates(table, values, deff, lower, measure: str, convert_binary: bool) -> list[Candidate]:
    """The data kinds usable for ``measure``, in priority order (``lower``: directions for scores, events)."""
    events = _events(values, deff, lower[1], measure, convert_binary)
    if measure == "rr":
        return [events, _precalc_log_rr(values)]
    if measure in ("or", "rd"):
        return [events]
    cands = [
        _continuous(values, deff, lower[0], measure, "", "means"),
        _continuous(values, deff, lower[0], measure, "_change", "change"),
        events,
    ]
    if measure == "g":
        cands += _precalc(values) + _statistics(table, values)
    return cands
