"""Mixed-effects meta-regression: model matrices from numeric and categorical moderators, and the fit.

The design follows R's ``model.matrix(~ a + b)`` with treatment coding: an intercept column
``intrcpt``, numeric moderators as they are, and for a categorical moderator one dummy column per level
except the first, named ``<moderator><level>``. Levels are sorted as R sorts strings (ICU collation:
punctuation, digits, letters; then accents; then case), so the reference level is the one metafor chooses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import unicodedata

import numpy as np

from metapsych.stats.rma import RmaFit, fit
from metapsych.stats.tau2 import TIGHT, Control


@dataclass(frozen=True)
class Design:
    """A model matrix with its column names and the input rows it kept (complete cases)."""

    X: np.ndarray
    names: tuple[str, ...]
    rows: np.ndarray
    levels: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class MetaRegression:
    """A fitted meta-regression: the model, its coefficient names, the design it used, and the columns of
    the model matrix dropped as redundant (as metafor drops them, with its warning)."""

    fit: RmaFit
    names: tuple[str, ...]
    design: Design
    dropped: tuple[str, ...] = ()

    def coefficients(self) -> dict[str, dict[str, float]]:
        """Per-coefficient estimate, se, statistic, p-value and CI, keyed by coefficient name."""
        f = self.fit
        return {
            name: {"estimate": float(f.beta[i]), "se": float(f.se[i]), "statistic": float(f.statistic[i]),
                   "p_value": float(f.p_value[i]), "ci_lower": float(f.ci_lower[i]),
                   "ci_upper": float(f.ci_upper[i])}
            for i, name in enumerate(self.names)
        }


# R's sort() and factor() order strings by ICU's root collation (R in a UTF-8 locale, as on the oracle
# machine): whitespace and punctuation first, in this order, then digits, then letters.
_PUNCTUATION = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"
# secondary (accent) order of the common combining marks: acute, grave, breve, circumflex, caron, ring,
# diaeresis, double acute, tilde, dot above, cedilla, ogonek, macron, and the stroke of o
_ACCENTS = "\u0301\u0300\u0306\u0302\u030c\u030a\u0308\u030b\u0303\u0307\u0327\u0328\u0304\u0338"
_LIGATURE = 10_000_000  # secondary weight above every accent
_EXPANSIONS = {"ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o\u0338", "Ø": "O\u0338"}

SortKey = tuple[tuple[int, ...], tuple[tuple[int, ...], ...], tuple[int, ...], str]


def r_sort_key(value: str) -> SortKey:
    """Sort key that orders strings as R's sort() does (ICU root collation): exactly for ASCII; other
    whitespace, punctuation (dashes, quotes) and symbols (>=, currency) before digits and letters, as ICU
    puts them, though their order among themselves is only approximated.

    Strings are compared by their letters, digits and punctuation first (ignoring case and accents), then
    by accents, then by case (lower case first), so that "a" < "A" < "á" < "b" and "<18" < "18-65". The
    reference level of a categorical moderator is the first one, so this decides metafor's coefficients.
    """
    primary: list[int] = []
    secondary: list[tuple[int, ...]] = []
    tertiary: list[int] = []
    for char in unicodedata.normalize("NFD", value):
        expanded = _EXPANSIONS.get(char)
        first = len(secondary)
        for part in unicodedata.normalize("NFD", expanded) if expanded is not None else char:
            _add_collation_element(part, primary, secondary, tertiary)
        if expanded is not None:  # ligatures, sharp s and o with stroke sort after their letters with any accent
            secondary[first] += (_LIGATURE,)
    return tuple(primary), tuple(secondary), tuple(tertiary), value


def _add_collation_element(char: str, primary: list[int], secondary: list[tuple[int, ...]],
                           tertiary: list[int]) -> None:
    """Append the weights of one decomposed character (a combining mark adds to the previous character)."""
    if unicodedata.combining(char) or char in _ACCENTS:
        weight = _ACCENTS.find(char)
        mark = 1 + weight if weight >= 0 else len(_ACCENTS) + ord(char)
        if secondary:
            secondary[-1] += (mark,)
        return
    if char in _PUNCTUATION:
        weight = _PUNCTUATION.index(char)
    elif char.isdigit():
        weight = 1000 + unicodedata.digit(char, 0)
    elif char.isalpha():
        weight = 2000 + ord(char.lower())
    else:  # other whitespace first, then other punctuation, then symbols: all before digits, as in ICU
        kind = unicodedata.category(char)[0]
        weight = 0 if char.isspace() or kind == "Z" else (100 if kind == "P" else 500) + ord(char) % 400
    primary.append(weight)
    secondary.append(())
    tertiary.append(int(char.isupper()))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def _is_numeric(values: Sequence[object]) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
               for v in values if not _is_missing(v))


def design_matrix(moderators: Mapping[str, Sequence[object]],
                  order: Mapping[str, Sequence[str]] | None = None) -> Design:
    """Build an R-style treatment-coded model matrix (with intercept) from named moderator columns.

    A column whose non-missing values are all numbers is numeric; anything else is categorical (values
    are compared as strings), its levels sorted as R sorts strings unless ``order`` gives them (R's
    ``factor()`` of numbers orders them by value). Rows with a missing value in any moderator are dropped
    (``rows`` keeps the indices of the rows used), as R's default ``na.action`` does.
    """
    columns = {name: list(values) for name, values in moderators.items()}
    n = len(next(iter(columns.values()))) if columns else 0
    keep = np.array([not any(_is_missing(col[i]) for col in columns.values()) for i in range(n)], dtype=bool)
    rows = np.flatnonzero(keep)
    blocks, names, levels = [np.ones((rows.size, 1))], ["intrcpt"], {}
    for name, col in columns.items():
        kept = [col[i] for i in rows]
        if _is_numeric(kept):
            blocks.append(np.asarray(kept, dtype=float)[:, None])
            names.append(name)
            continue
        text = [str(v) for v in kept]
        present = set(text)
        lv = tuple(t for t in order[name] if t in present) if order and name in order else \
            tuple(sorted(present, key=r_sort_key))
        levels[name] = lv
        for level in lv[1:]:
            blocks.append(np.array([t == level for t in text], dtype=float)[:, None])
            names.append(f"{name}{level}")
    return Design(X=np.hstack(blocks), names=tuple(names), rows=rows, levels=levels)


def meta_regression(
    yi: np.ndarray,
    vi: np.ndarray,
    moderators: Mapping[str, Sequence[object]],
    estimator: str = "REML",
    test: str = "z",
    level: float = 0.95,
    control: Control = TIGHT,
    order: Mapping[str, Sequence[str]] | None = None,
) -> MetaRegression:
    """Fit ``rma(yi, vi, mods = ~ m1 + m2 + ...)``: coefficients, QM (chi2, or F with knha) and R^2
    (``order``: level orders of categorical moderators, see ``design_matrix``).

    Columns of the model matrix that are linear combinations of earlier ones (collinear moderators, or more
    coefficients than studies) are dropped first, as metafor does ("Redundant predictors dropped from the
    model."): ``dropped`` names them and the fit's message says so. ValueError when the model left has as
    many coefficients as studies and tau^2 is to be estimated (as metafor stops).
    """
    return fit_design(yi, vi, design_matrix(moderators, order), estimator, test, level, control)


def fit_design(yi: np.ndarray, vi: np.ndarray, design: Design, estimator: str = "REML", test: str = "z",
               level: float = 0.95, control: Control = TIGHT) -> MetaRegression:
    """``meta_regression`` on a model matrix already built (``design_matrix``), for callers that check it
    first."""
    y = np.asarray(yi, dtype=float)[design.rows]
    v = np.asarray(vi, dtype=float)[design.rows]
    keep = _independent_columns(design.X)
    dropped = tuple(name for name, kept in zip(design.names, keep) if not kept)
    if dropped:
        design = replace(design, X=design.X[:, keep], names=tuple(n for n, kept in zip(design.names, keep) if kept))
    result = fit(y, v, X=design.X, estimator=estimator, test=test, level=level, control=control)
    if dropped:
        note = f"redundant predictors dropped from the model: {', '.join(dropped)} (as metafor)"
        result = replace(result, message="; ".join(m for m in (result.message, note) if m))
    return MetaRegression(fit=result, names=design.names, design=design, dropped=dropped)


REDUNDANT_TOL = 1e-7  # lm()'s tolerance (LINPACK dqrdc2), which metafor's check for redundant columns uses


def _independent_columns(x: np.ndarray) -> np.ndarray:
    """Which columns to keep: each whose residual on the columns kept before it is above REDUNDANT_TOL of
    its norm, as ``lm(yi ~ X - 1)`` finds them (unweighted, left to right)."""
    keep = np.zeros(x.shape[1], bool)
    for j in range(x.shape[1]):
        column, kept = x[:, j], x[:, keep]
        rest = column - kept @ np.linalg.lstsq(kept, column, rcond=None)[0] if kept.size else column
        keep[j] = np.linalg.norm(rest) > REDUNDANT_TOL * np.linalg.norm(column) and keep.sum() < x.shape[0]
    return keep
