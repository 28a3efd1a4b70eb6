"""Frequentist contrast-based network meta-analysis (as netmeta, with metafor rma.mv REML).

``fit_network`` takes contrast rows (``yi`` = effect of ``treat1`` versus ``treat2``) and returns a
frozen ``NetworkFit``: every treatment against the reference, the league table, P-scores (and the
equal analytic SUCRA), the between-study variance (REML as metafor ``rma.mv(..., random = ~ comp |
study, rho = 1/2)``, and netmeta's DL-type estimator), the design-based Q decomposition, node-splitting
and the connected components. The common and DL models are netmeta's (graph fit over all pairwise
contrasts); the REML model is rma.mv's (its tau2 and its GLS effects on contrasts against a baseline arm).
They agree unless a multi-arm study's contrasts are inconsistent; ``network_payload`` states which handling
each quantity uses. A disconnected network is analysed per component: the fit describes the
component holding the reference, ``others`` holds the fits of the remaining components.
``network_payload`` turns a fit into the JSON-safe dict of the CLI/report contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from metapsych.errors import AnalysisError
from metapsych.stats import distributions as dist
from metapsych.stats.network_data import (
    NetworkData,
    build_network_data,
    components,
    subset,
)
from metapsych.stats.network_inconsistency import (
    QDecomposition,
    SplitRow,
    decompose_q,
    i2_with_ci,
    node_split,
)
from metapsych.stats.network_model import (
    GraphFit,
    gls_effects,
    graph_fit,
    tau2_dl,
    tau2_reml,
)
from metapsych.stats.network_rank import p_scores

Model = Literal["random", "common"]


@dataclass(frozen=True)
class GraphNode:
    """A treatment in the network graph."""

    treatment: str
    n_trials: int
    n_participants: float | None


@dataclass(frozen=True)
class GraphEdge:
    """A directly compared pair (sorted names) and the number of trials comparing them."""

    treat1: str
    treat2: str
    n_trials: int


@dataclass(frozen=True)
class NetworkFit:
    """A fitted network (one connected component). ``d`` and ``cov`` are against the reference.

    ``d[i]`` is treatment i versus the reference (0 for the reference), ``cov`` their covariance.
    ``Q``-fields are those of the common-effect model (they do not depend on tau2); ``I2`` is
    (estimate, lower, upper) in percent, from Q as netmeta gives it.
    """

    reference: str
    model: str
    tau2_method: str
    level: float
    small_values: str
    treatments: tuple[str, ...]
    d: np.ndarray
    cov: np.ndarray
    tau2: float
    tau2_dl: float
    tau2_reml: float
    q: QDecomposition
    I2: tuple[float | None, float | None, float | None]
    p_scores: np.ndarray
    mean_ranks: np.ndarray
    split: tuple[SplitRow, ...]
    n_studies: int
    n_contrasts: int
    multi_arm_studies: tuple[str, ...]
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    notes: tuple[str, ...]
    others: tuple[NetworkFit, ...] = field(default=())

    def contrast(self, t1: str, t2: str) -> tuple[float, float]:
        """Estimate and standard error of ``t1`` versus ``t2``."""
        i, j = self.treatments.index(t1), self.treatments.index(t2)
        c = self.cov
        return float(self.d[i] - self.d[j]), float(np.sqrt(max(c[i, i] + c[j, j] - 2.0 * c[i, j], 0.0)))

    @property
    def z_crit(self) -> float:
        """Normal quantile for the confidence level."""
        return dist.norm_crit(dist.alpha_from_level(self.level))

    @property
    def inconsistency_testable(self) -> bool:
        """True when some comparison has both direct and indirect evidence (the network has a loop)."""
        return any(row.indirect is not None for row in self.split) or self.q.Q_between_df > 0


def fit_network(
    study: list[str] | tuple[str, ...] | np.ndarray,
    treat1: list[str] | tuple[str, ...] | np.ndarray,
    treat2: list[str] | tuple[str, ...] | np.ndarray,
    yi: np.ndarray | list[float],
    vi: np.ndarray | list[float],
    *,
    reference: str | None = None,
    model: Model = "random",
    tau2_method: Literal["REML", "DL"] = "REML",
    level: float = 0.95,
    small_values: Literal["bad", "good"] = "bad",
    n1: np.ndarray | list[float] | None = None,
    n2: np.ndarray | list[float] | None = None,
    notes: tuple[str, ...] | list[str] = (),
) -> NetworkFit:
    """Fit a network meta-analysis. Raises ``NetworkDataError`` for bad rows, ``ValueError`` for options.

    ``reference`` defaults to the most connected treatment of the largest component. ``n1``/``n2``
    (participants in the treat1/treat2 arm) only size the graph nodes; ``notes`` are added to the fit's notes
    (e.g. those of ``network_data.complete_multiarm``).
    """
    if model not in ("random", "common"):
        raise ValueError(f"model must be 'random' or 'common', not {model!r}")
    if tau2_method not in ("REML", "DL"):
        raise ValueError(f"tau2_method must be 'REML' or 'DL', not {tau2_method!r}")
    if small_values not in ("bad", "good"):
        raise ValueError(f"small_values must be 'bad' or 'good', not {small_values!r}")
    data = build_network_data(study, treat1, treat2, yi, vi, n1, n2)
    if reference is not None and reference not in data.treatments:
        raise ValueError(f"reference '{reference}' is not a treatment in the network "
                         f"(treatments: {', '.join(data.treatments)})")
    comps = components(data)
    main = next((c for c in comps if reference in (data.treatments[t] for t in c)), comps[0])
    notes = list(notes)
    if reference is None:
        reference = _most_connected(data, main)
        notes.append(f"no reference given: using '{reference}', the most connected treatment")
    opts = dict(model=model, tau2_method=tau2_method, level=level, small_values=small_values)
    main_fit = _fit_component(subset(data, main), reference, notes, **opts)
    others = []
    for c in comps:
        if c is main:
            continue
        sub = subset(data, c)
        ref_c = _most_connected(data, c)
        note = f"disconnected from '{reference}': analysed on its own with reference '{ref_c}'"
        others.append(_fit_component(sub, ref_c, [note], **opts))
    if others:
        main_fit = _with_notes(main_fit, f"the network has {len(comps)} disconnected parts; each is analysed "
                                         "separately and estimates are not comparable across parts")
    return replace(main_fit, others=tuple(others))


def _most_connected(data: NetworkData, comp: tuple[int, ...]) -> str:
    counts = {t: sum(1 for s in data.studies if t in s.arms) for t in comp}
    return data.treatments[min(comp, key=lambda t: (-counts[t], data.treatments[t]))]


def _fit_component(data: NetworkData, reference: str, notes: list[str], *, model: str, tau2_method: str,
                   level: float, small_values: str) -> NetworkFit:
    ref = data.index(reference)
    common = graph_fit(data, 0.0)
    t_dl = tau2_dl(data, common)
    t_reml = _reml_or_nan(data, ref, t_dl, needed=model == "random" and tau2_method == "REML")
    tau2 = 0.0 if model == "common" else (t_reml if tau2_method == "REML" else t_dl)
    fit = common if tau2 == 0.0 else graph_fit(data, tau2)
    if model == "random" and tau2_method == "REML":
        fit = _rma_mv_effects(data, fit, ref)
    d = fit.theta - fit.theta[ref]
    centre = np.eye(data.n_treatments)
    centre[:, ref] -= 1.0
    cov = centre @ fit.lplus @ centre.T
    scores = p_scores(d, cov, small_values == "good")
    q = decompose_q(data, common, ref)
    split = node_split(data, fit, ref)
    notes = list(notes)
    if not any(r.indirect is not None for r in split):
        notes.append("no closed loop: no comparison has both direct and indirect evidence, so inconsistency "
                     "cannot be tested")
    n = data.n_treatments
    return NetworkFit(
        reference=reference, model=model, tau2_method=tau2_method if model == "random" else "none", level=level,
        small_values=small_values, treatments=data.treatments, d=d, cov=cov, tau2=tau2, tau2_dl=t_dl,
        tau2_reml=t_reml, q=q, I2=i2_with_ci(q.Q_total, q.Q_total_df, level), p_scores=scores,
        mean_ranks=1.0 + (n - 1) * (1.0 - scores), split=split,
        n_studies=len(data.studies), n_contrasts=int(data.yi.size),
        multi_arm_studies=tuple(s.label for s in data.studies if s.n_arms > 2),
        nodes=_nodes(data), edges=_edges(data), notes=tuple(notes),
    )


def _rma_mv_effects(data: NetworkData, fit: GraphFit, ref: int) -> GraphFit:
    """The REML model's effects as metafor's rma.mv estimates them (``gls_effects``); the covariance stays the
    graph fit's, which is rma.mv's whenever the multi-arm contrast variances split into arm variances."""
    d = gls_effects(data, ref, fit.tau2)
    theta = d - d[0]
    fitted = fit.incidence @ theta
    return replace(fit, theta=theta, fitted=fitted, Q=float(np.sum(fit.weights * (data.yi - fitted) ** 2)))


def _reml_or_nan(data: NetworkData, ref: int, start: float, *, needed: bool) -> float:
    """REML tau2; NaN when it cannot be found and is not needed, AnalysisError when it is needed."""
    try:
        return tau2_reml(data, ref, start=start)
    except (ArithmeticError, np.linalg.LinAlgError, ValueError) as exc:
        if needed:
            raise AnalysisError(f"REML estimation of tau2 failed ({exc}); try --common or the DL-type "
                                "estimator") from None
        return float("nan")


def _nodes(data: NetworkData) -> tuple[GraphNode, ...]:
    out = []
    for t, name in enumerate(data.treatments):
        studies = [s for s in data.studies if t in s.arms]
        out.append(GraphNode(name, len(studies), _participants(data, t, studies)))
    return tuple(out)


def _participants(data: NetworkData, t: int, studies: list) -> float | None:
    if data.n1 is None or data.n2 is None:
        return None
    total = 0.0
    for s in studies:
        r = next(r for r in s.rows if t in (data.treat1[r], data.treat2[r]))
        n = data.n1[r] if data.treat1[r] == t else data.n2[r]
        if not np.isfinite(n):
            return None
        total += float(n)
    return total


def _edges(data: NetworkData) -> tuple[GraphEdge, ...]:
    counts: dict[tuple[str, str], int] = {}
    for a, b in zip(data.treat1, data.treat2):
        key = tuple(sorted((data.treatments[a], data.treatments[b])))
        counts[key] = counts.get(key, 0) + 1
    return tuple(GraphEdge(a, b, n) for (a, b), n in sorted(counts.items()))


def _with_notes(fit: NetworkFit, note: str) -> NetworkFit:
    return replace(fit, notes=(*fit.notes, note))


def network_payload(fit: NetworkFit) -> dict:
    """JSON-safe dict: the CLI contract keys plus sucra, split, components, designs, graph and notes."""
    from metapsych.stats.network_payload import payload

    return payload(fit)


__all__ = ["NetworkFit", "fit_network", "network_payload", "NetworkData", "build_network_data"]
