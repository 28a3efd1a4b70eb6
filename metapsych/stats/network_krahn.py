"""netmeta's generalised Q on basic contrasts (Krahn, Binder & König 2013: ``nma.krahn``, ``decomp.design``).

netmeta prints Q_total from the graph-theoretical fit over ALL pairwise contrasts (multi-arm studies with
Rücker's reduced weights, ``network_model.graph_fit``). Its split of Q into within designs and between
designs, the DL-type ``tau.within`` and the design-by-treatment random-effects Q come from ``nma.krahn``
instead: every study enters as its m-1 basic contrasts a - b against one baseline arm b, with the
shared-arm covariance (v(a,b) + v(c,b) - v(a,c)) / 2 (plus tau2/2 under a between-study variance tau2).
Both give the same Q when a multi-arm study's contrasts are consistent; when they are consistent only to
netmeta's tolerance (0.001) the two differ slightly, and netmeta's between-designs Q is
Q_net(basic contrasts) - Q_within, not Q_total - Q_within. This module reproduces that.

Baseline (as netmeta): contrasts are oriented alphabetically with the reference first, and the baseline
of a multi-arm study is its most frequent first treatment: the reference when the study has it, else its
alphabetically first arm (treatment indices are alphabetical, so the smallest index). "Alphabetical" is
Python's code-point order; R sorts in the session's locale, so for treatment names that differ in case
netmeta may pick another baseline, which matters only for a multi-arm study with inconsistent contrasts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metapsych.stats.network_data import NetworkData, design_label
from metapsych.stats.network_model import study_baseline


@dataclass(frozen=True)
class BasicContrasts:
    """Each study's basic contrasts: effects ``y``, treatments ``pairs`` (a, b), design of each row.

    ``groups`` holds, per number of basic contrasts m, the studies' positions (nb,), row indices (nb, m)
    and sampling covariance blocks (nb, m, m), so that every step works on stacked blocks.
    """

    y: np.ndarray
    pairs: np.ndarray
    designs: tuple[str, ...]
    n_studies: int
    groups: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]


@dataclass(frozen=True)
class GlsFit:
    """A generalised least-squares fit: Q, its df, and each study's contribution to Q."""

    Q: float
    df: int
    block_q: np.ndarray


def basic_contrasts(data: NetworkData, reference: int) -> BasicContrasts:
    """The basic contrasts of every study against its netmeta baseline arm."""
    ys: list[float] = []
    pairs: list[tuple[int, int]] = []
    designs: list[str] = []
    by_size: dict[int, tuple[list[int], list[list[int]], list[np.ndarray]]] = {}
    for pos, s in enumerate(data.studies):
        y_s, v_s, pairs_s = study_baseline(data, s, reference, sorted_arms=True)
        studies, idx, blocks = by_size.setdefault(len(y_s), ([], [], []))
        studies.append(pos)
        idx.append(list(range(len(ys), len(ys) + len(y_s))))
        blocks.append(v_s)
        ys.extend(y_s)
        pairs.extend(pairs_s)
        designs.extend([design_label(data, s)] * len(y_s))
    groups = tuple((np.array(st), np.array(idx), np.array(bl)) for _, (st, idx, bl) in sorted(by_size.items()))
    return BasicContrasts(y=np.array(ys), pairs=np.array(pairs, dtype=int), designs=tuple(designs),
                          n_studies=len(data.studies), groups=groups)


def consistency_design(bc: BasicContrasts, n_treatments: int, reference: int) -> np.ndarray:
    """X of the consistency model: a column per non-reference treatment (+1 for a, -1 for b)."""
    x = np.zeros((bc.y.size, n_treatments))
    rows = np.arange(bc.y.size)
    x[rows, bc.pairs[:, 0]] += 1.0
    x[rows, bc.pairs[:, 1]] -= 1.0
    return np.delete(x, reference, axis=1)


def interaction_design(bc: BasicContrasts) -> np.ndarray:
    """X of the full design-by-treatment interaction model: a column per (design, basic contrast)."""
    keys = [(d, int(a), int(b)) for d, (a, b) in zip(bc.designs, bc.pairs)]
    column = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    x = np.zeros((len(keys), len(column)))
    x[np.arange(len(keys)), [column[k] for k in keys]] = 1.0
    return x


def _pattern(m: int) -> np.ndarray:
    """Between-study covariance pattern of a study's m basic contrasts: 1 on the diagonal, 1/2 off it."""
    return (np.eye(m) + 1.0) / 2.0


def _weights(bc: BasicContrasts, tau2: float) -> list[np.ndarray]:
    """Stacked inverses of V + tau2 K, one array (nb, m, m) per group."""
    return [np.linalg.inv(blocks + tau2 * _pattern(idx.shape[1])) for _, idx, blocks in bc.groups]


def _cross(a: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum over stacked blocks of A_s' W_s B_s (a: (nb, m, p), w: (nb, m, m), b: (nb, m, q)) as one matrix product."""
    wb = w @ b
    return a.reshape(-1, a.shape[-1]).T @ wb.reshape(-1, wb.shape[-1])


def _information(bc: BasicContrasts, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """X'WX."""
    return sum(np.einsum("bip,bij,bjq->pq", x[idx], w, x[idx]) for (_, idx, _), w in zip(bc.groups, weights))


def gls(bc: BasicContrasts, x: np.ndarray, tau2: float = 0.0) -> GlsFit:
    """GLS fit of y = X beta with covariance V + tau2 (I + J)/2 per study; Q = r' W r per study."""
    weights = _weights(bc, tau2)
    xtwy = sum(np.einsum("bip,bij,bj->p", x[idx], w, bc.y[idx]) for (_, idx, _), w in zip(bc.groups, weights))
    beta = np.linalg.solve(_information(bc, x, weights), xtwy)
    resid = bc.y - x @ beta
    block_q = np.zeros(bc.n_studies)
    for (studies, idx, _), w in zip(bc.groups, weights):
        block_q[studies] = np.einsum("bi,bij,bj->b", resid[idx], w, resid[idx])
    return GlsFit(Q=float(np.sum(block_q)), df=int(bc.y.size - x.shape[1]), block_q=block_q)


def tau2_within(bc: BasicContrasts, x: np.ndarray) -> float:
    """netmeta's ``tau.within`` squared: the DL-type tau2 of the design-by-treatment interaction model.

    tau2 = max(0, (Q - df) / (tr(W K) - tr(C X'W K W X))), C = (X'WX)^-1, K the pattern blocks.
    """
    fit = gls(bc, x, 0.0)
    weights = _weights(bc, 0.0)
    trace1 = sum(float(np.einsum("bij,ji->", w, _pattern(w.shape[1]))) for w in weights)
    middle = sum(_cross(x[idx], w @ _pattern(w.shape[1]) @ w, x[idx]) for (_, idx, _), w in zip(bc.groups, weights))
    trace2 = float(np.sum(np.linalg.inv(_information(bc, x, weights)) * middle))
    if trace1 == trace2:
        return 0.0
    return max(0.0, (fit.Q - fit.df) / (trace1 - trace2))
