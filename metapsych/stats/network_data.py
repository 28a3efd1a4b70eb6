"""Contrast rows of a network meta-analysis, checked and organised by study, design and component.

Input is one row per pairwise contrast (``yi`` = effect of ``treat1`` versus ``treat2``, ``vi`` its
sampling variance), as netmeta's ``pairwise()`` writes it: a study with m >= 3 arms gives all
m(m-1)/2 contrasts. The checks mirror netmeta's ``chkmultiarm``: complete and non-duplicated
multi-arm contrasts, effects consistent within a study (tolerance 0.001, netmeta's
``tol.multiarm``) and contrast variances that split into positive arm variances
(vi(a,b) = s_a + s_b). Problems are raised as ``NetworkDataError`` naming the offending rows, so that
the caller can point at file lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOL_MULTIARM = 1e-3
"""Largest allowed deviation of a multi-arm study's effects from consistency (netmeta's default)."""

TOL_ARM_VARIANCE = 0.05
"""Largest allowed relative misfit of vi(a,b) = s_a + s_b in a multi-arm study."""


class NetworkDataError(ValueError):
    """Bad network input: ``rows`` are 0-based input rows, ``field`` the column at fault."""

    def __init__(self, rows: tuple[int, ...], field: str, problem: str, expected: str = "") -> None:
        self.rows = rows
        self.field = field
        self.problem = problem
        self.expected = expected
        super().__init__(f"rows {list(rows)}: {field}: {problem}" + (f" (expected {expected})" if expected else ""))


@dataclass(frozen=True)
class Study:
    """One study: its label, arms (treatment indices, order of first appearance) and input rows."""

    label: str
    arms: tuple[int, ...]
    rows: tuple[int, ...]

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return len(self.arms)


@dataclass(frozen=True)
class NetworkData:
    """Validated contrast rows with treatments coded 0..n-1 (sorted names)."""

    treatments: tuple[str, ...]
    study_labels: tuple[str, ...]
    row_study: np.ndarray
    treat1: np.ndarray
    treat2: np.ndarray
    yi: np.ndarray
    vi: np.ndarray
    studies: tuple[Study, ...]
    n1: np.ndarray | None
    n2: np.ndarray | None

    @property
    def n_treatments(self) -> int:
        """Number of treatments."""
        return len(self.treatments)

    def index(self, name: str) -> int:
        """Index of a treatment name."""
        return self.treatments.index(name)


def build_network_data(
    study: list[str] | tuple[str, ...] | np.ndarray,
    treat1: list[str] | tuple[str, ...] | np.ndarray,
    treat2: list[str] | tuple[str, ...] | np.ndarray,
    yi: np.ndarray | list[float],
    vi: np.ndarray | list[float],
    n1: np.ndarray | list[float] | None = None,
    n2: np.ndarray | list[float] | None = None,
) -> NetworkData:
    """Check contrast rows and organise them; raises ``NetworkDataError`` on the first problem."""
    labels = [str(s) for s in study]
    t1 = [str(t) for t in treat1]
    t2 = [str(t) for t in treat2]
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    k = len(labels)
    if not (len(t1) == len(t2) == y.size == v.size == k) or k == 0:
        raise NetworkDataError((), "yi", "study, treat1, treat2, yi and vi differ in length or are empty")
    _check_values(t1, t2, y, v)
    treatments = tuple(sorted(set(t1) | set(t2)))
    code = {name: i for i, name in enumerate(treatments)}
    a = np.array([code[t] for t in t1], dtype=int)
    b = np.array([code[t] for t in t2], dtype=int)
    study_labels = tuple(dict.fromkeys(labels))
    s_code = {s: i for i, s in enumerate(study_labels)}
    row_study = np.array([s_code[s] for s in labels], dtype=int)
    order = np.argsort(row_study, kind="stable")  # each study's rows, in input order
    bounds = np.searchsorted(row_study[order], np.arange(len(study_labels) + 1))
    studies = tuple(_make_study(s, order[bounds[i]:bounds[i + 1]], a, b, y, v) for i, s in enumerate(study_labels))
    return NetworkData(
        treatments=treatments,
        study_labels=study_labels,
        row_study=row_study,
        treat1=a,
        treat2=b,
        yi=y,
        vi=v,
        studies=studies,
        n1=None if n1 is None else np.asarray(n1, dtype=float),
        n2=None if n2 is None else np.asarray(n2, dtype=float),
    )


def _check_values(t1: list[str], t2: list[str], y: np.ndarray, v: np.ndarray) -> None:
    same = tuple(i for i in range(len(t1)) if t1[i] == t2[i])
    if same:
        raise NetworkDataError(same, "treat2", "compares a treatment with itself", "two different treatments")
    bad_y = tuple(int(i) for i in np.flatnonzero(~np.isfinite(y)))
    if bad_y:
        raise NetworkDataError(bad_y, "yi", "missing or not a finite number", "a finite effect size")
    bad_v = tuple(int(i) for i in np.flatnonzero(~(np.isfinite(v) & (v > 0))))
    if bad_v:
        raise NetworkDataError(bad_v, "vi", "not a positive finite variance", "vi > 0")


def _make_study(label: str, rows: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, v: np.ndarray) -> Study:
    arms = tuple(dict.fromkeys(int(t) for r in rows for t in (a[r], b[r])))
    rows_t = tuple(int(r) for r in rows)
    pairs = [frozenset((int(a[r]), int(b[r]))) for r in rows]
    if len(set(pairs)) < len(pairs):
        raise NetworkDataError(rows_t, "treat1", f"study '{label}' gives the same comparison twice",
                               "one row per pair of arms")
    m = len(arms)
    if len(rows) != m * (m - 1) // 2:
        raise NetworkDataError(
            rows_t, "treat2",
            f"study '{label}' has {m} arms but {len(rows)} contrasts",
            f"all {m * (m - 1) // 2} pairwise contrasts of a {m}-arm study, as netmeta's pairwise() gives",
        )
    if m > 2:
        _check_multiarm(label, rows, arms, a, b, y, v)
    return Study(label=label, arms=arms, rows=rows_t)


def _check_multiarm(
    label: str, rows: np.ndarray, arms: tuple[int, ...], a: np.ndarray, b: np.ndarray, y: np.ndarray, v: np.ndarray
) -> None:
    local = {t: i for i, t in enumerate(arms)}
    inc = np.zeros((len(rows), len(arms)))
    inc[np.arange(len(rows)), [local[int(a[r])] for r in rows]] = 1.0
    inc[np.arange(len(rows)), [local[int(b[r])] for r in rows]] = -1.0
    ys, vs = y[rows], v[rows]
    resid = ys - inc @ (np.linalg.pinv(inc) @ ys)
    rows_t = tuple(int(r) for r in rows)
    if np.max(np.abs(resid)) > TOL_MULTIARM:
        raise NetworkDataError(
            rows_t, "yi", f"multi-arm study '{label}' has inconsistent effects (off by {np.max(np.abs(resid)):.3g})",
            "yi(a,c) = yi(a,b) + yi(b,c) within a study, to 0.001",
        )
    s = arm_variances(inc, vs)
    misfit = np.max(np.abs(np.abs(inc) @ s - vs) / vs)
    if np.any(s <= 0) or misfit > TOL_ARM_VARIANCE:
        raise NetworkDataError(
            rows_t, "vi", f"multi-arm study '{label}' has inconsistent contrast variances",
            "vi(a,b) = s_a + s_b with positive arm variances s",
        )


def arm_variances(incidence: np.ndarray, vi: np.ndarray) -> np.ndarray:
    """Arm variances s solving vi(a,b) = s_a + s_b by least squares (exact for consistent data)."""
    return np.linalg.lstsq(np.abs(incidence), vi, rcond=None)[0]


def components(data: NetworkData) -> list[tuple[int, ...]]:
    """Connected sub-networks as sorted treatment-index tuples, largest (most studies) first."""
    parent = list(range(data.n_treatments))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(data.treat1, data.treat2):
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for t in range(data.n_treatments):
        groups.setdefault(find(t), []).append(t)
    comps = [tuple(g) for g in groups.values()]
    n_studies = {c: sum(1 for s in data.studies if s.arms[0] in c) for c in comps}
    return sorted(comps, key=lambda c: (-n_studies[c], data.treatments[c[0]]))


def subset(data: NetworkData, treatments: tuple[int, ...]) -> NetworkData:
    """The rows among ``treatments`` (a union of connected components), recoded."""
    keep = np.isin(data.treat1, treatments)
    rows = np.flatnonzero(keep)
    pick = lambda arr: None if arr is None else arr[rows]  # noqa: E731
    return build_network_data(
        [data.study_labels[s] for s in data.row_study[rows]],
        [data.treatments[t] for t in data.treat1[rows]],
        [data.treatments[t] for t in data.treat2[rows]],
        data.yi[rows],
        data.vi[rows],
        pick(data.n1),
        pick(data.n2),
    )


def design_label(data: NetworkData, study: Study) -> str:
    """netmeta-style design label: the study's treatments sorted and joined by ':'."""
    return ":".join(sorted(data.treatments[t] for t in study.arms))


@dataclass(frozen=True)
class CompletedRows:
    """Contrast rows with multi-arm studies completed; ``source`` maps each row to its input row."""

    study: list[str]
    treat1: list[str]
    treat2: list[str]
    yi: list[float]
    vi: list[float]
    n1: list[float] | None
    n2: list[float] | None
    source: list[int]
    notes: list[str]


def complete_multiarm(
    study: list[str], treat1: list[str], treat2: list[str], yi: list[float], vi: list[float],
    n1: list[float] | None = None, n2: list[float] | None = None,
) -> CompletedRows:
    """Add the missing contrasts of multi-arm studies given as m-1 contrasts against one shared arm.

    Metapsy-style rows give each arm of a multi-arm trial against the common comparator c. The missing
    contrast a - b is y(a,c) - y(b,c) with variance vi(a,c) + vi(b,c) - 2 s_c, where the shared arm's
    variance s_c is apportioned from each vi(a,c) in proportion to 1/n (equal shares without n): exact
    for mean differences with equal SDs, an approximation otherwise, and reported in ``notes``.
    Studies that are complete or not of this star shape are left as they are (fit_network reports them).
    """
    out = CompletedRows(list(study), list(treat1), list(treat2), [float(y) for y in yi], [float(v) for v in vi],
                        None if n1 is None else list(n1), None if n2 is None else list(n2),
                        list(range(len(study))), [])
    members: dict[str, list[int]] = {}
    for i, label in enumerate(study):
        members.setdefault(label, []).append(i)
    for label, rows in members.items():
        arms = list(dict.fromkeys(t for i in rows for t in (treat1[i], treat2[i])))
        m = len(arms)
        if m < 3 or len(rows) != m - 1:
            continue
        shared = [c for c in arms if all(c in (treat1[i], treat2[i]) for i in rows)]
        if len(shared) == 1:
            _complete_star(out, label, rows, shared[0])
    return out


def _complete_star(out: CompletedRows, label: str, rows: list[int], c: str) -> None:
    eff: dict[str, tuple[float, float, int]] = {}
    shares = []
    n_of = {}
    for i in rows:
        a, sign = (out.treat1[i], 1.0) if out.treat2[i] == c else (out.treat2[i], -1.0)
        eff[a] = (sign * out.yi[i], out.vi[i], i)
        if out.n1 is not None and out.n2 is not None:
            n_a, n_c = (out.n1[i], out.n2[i]) if sign > 0 else (out.n2[i], out.n1[i])
            n_of[a], n_of[c] = n_a, n_c
    for a, (_, v, _) in eff.items():
        n_a, n_c = n_of.get(a, float("nan")), n_of.get(c, float("nan"))
        ok = np.isfinite(n_a) and np.isfinite(n_c) and n_a > 0 and n_c > 0
        shares.append(v * (1.0 / n_c) / (1.0 / n_a + 1.0 / n_c) if ok else v / 2.0)
    s_c = min(float(np.mean(shares)), 0.99 * min(v for _, v, _ in eff.values()))
    names = list(eff)
    for x in range(len(names)):
        for z in range(x + 1, len(names)):
            a, b = names[x], names[z]
            (ya, va, ia), (yb, vb, _) = eff[a], eff[b]
            out.study.append(label)
            out.treat1.append(a)
            out.treat2.append(b)
            out.yi.append(ya - yb)
            out.vi.append(va + vb - 2.0 * s_c)
            if out.n1 is not None and out.n2 is not None:
                out.n1.append(n_of.get(a, float("nan")))
                out.n2.append(n_of.get(b, float("nan")))
            out.source.append(ia)
    how = "in proportion to 1/n" if n_of else "equally (no arm sizes)"
    out.notes.append(f"study '{label}': contrasts between arms other than the shared arm '{c}' were derived from "
                     f"its {len(rows)} contrasts against '{c}' (shared-arm variance apportioned {how})")
