"""Inconsistency in a network: netmeta's design-based Q decomposition and back-calculation node-splitting.

* ``decompose_q`` (netmeta ``decomp.design``, Krahn et al. 2013): the generalised Q of the common-effect
  model is split into the sum of within-design Qs (heterogeneity among studies of the same design) and
  the between-designs Q (design-by-treatment inconsistency). The between-designs Q is also given under
  the full design-by-treatment interaction random-effects model, with its DL-type tau2 ("tau.within").
* ``node_split`` (netmeta ``netsplit``, back-calculation): for every comparison with direct evidence, the
  direct estimate pools the studies of that comparison (inverse variance, plus tau2 in the random model),
  the indirect estimate is backed out of the network estimate, (d_net - p d_dir) / (1 - p) with
  p = var_net / var_dir, and the difference is z-tested.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metapsych.stats import distributions as dist
from metapsych.stats.network_data import NetworkData, build_network_data, design_label
from metapsych.stats.network_model import GraphFit, dl_denominator, graph_fit

_EPS_P = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True)
class DesignQ:
    """Within-design heterogeneity of one design (its studies' treatments)."""

    design: str
    n_studies: int
    Q: float
    df: int
    p_value: float | None


@dataclass(frozen=True)
class QDecomposition:
    """Q total = Q within designs + Q between designs, each with df and p (p is None when df = 0)."""

    Q_total: float
    Q_total_df: int
    Q_total_p: float | None
    Q_within: float
    Q_within_df: int
    Q_within_p: float | None
    Q_between: float
    Q_between_df: int
    Q_between_p: float | None
    tau2_within: float
    Q_between_random: float
    Q_between_random_p: float | None
    designs: tuple[DesignQ, ...]


def _p(q: float, df: int) -> float | None:
    return float(dist.chi2_sf(max(q, 0.0), df)) if df > 0 else None


def design_networks(data: NetworkData) -> dict[str, NetworkData]:
    """The sub-network of each design (studies with the same set of treatments), by design label."""
    groups: dict[str, list[int]] = {}
    for s in data.studies:
        groups.setdefault(design_label(data, s), []).extend(s.rows)
    out = {}
    for label in sorted(groups):
        rows = np.array(sorted(groups[label]))
        out[label] = build_network_data(
            [data.study_labels[i] for i in data.row_study[rows]],
            [data.treatments[t] for t in data.treat1[rows]],
            [data.treatments[t] for t in data.treat2[rows]],
            data.yi[rows],
            data.vi[rows],
        )
    return out


def decompose_q(data: NetworkData, common: GraphFit) -> QDecomposition:
    """netmeta's ``decomp.design`` Q decomposition for a connected network."""
    designs = design_networks(data)
    fits = {label: graph_fit(sub, 0.0) for label, sub in designs.items()}
    rows = tuple(
        DesignQ(label, len(designs[label].studies), f.Q, f.df, _p(f.Q, f.df)) for label, f in fits.items()
    )
    q_within = float(sum(f.Q for f in fits.values()))
    df_within = int(sum(f.df for f in fits.values()))
    denom = sum(dl_denominator(designs[label], f) for label, f in fits.items() if f.df > 0)
    tau2_w = max(0.0, (q_within - df_within) / denom) if denom > 0 else 0.0
    q_between = common.Q - q_within
    df_between = common.df - df_within
    q_net_r = graph_fit(data, tau2_w).Q
    q_within_r = sum(graph_fit(sub, tau2_w).Q for sub in designs.values())
    q_between_r = q_net_r - q_within_r
    return QDecomposition(
        Q_total=common.Q, Q_total_df=common.df, Q_total_p=_p(common.Q, common.df),
        Q_within=q_within, Q_within_df=df_within, Q_within_p=_p(q_within, df_within),
        Q_between=q_between, Q_between_df=df_between, Q_between_p=_p(q_between, df_between),
        tau2_within=tau2_w, Q_between_random=q_between_r, Q_between_random_p=_p(q_between_r, df_between),
        designs=rows,
    )


@dataclass(frozen=True)
class SplitRow:
    """Direct versus indirect evidence for treat1 versus treat2 (indirect fields None without indirect)."""

    treat1: str
    treat2: str
    k: int
    prop_direct: float
    network: float
    network_se: float
    direct: float
    direct_se: float
    indirect: float | None
    indirect_se: float | None
    difference: float | None
    difference_se: float | None
    z: float | None
    p_value: float | None


def node_split(data: NetworkData, fit: GraphFit, reference: int) -> tuple[SplitRow, ...]:
    """Back-calculation node-splitting for every directly compared pair, at the fit's tau2.

    Pairs are oriented with the reference second when it is involved, else in sorted order.
    """
    out = []
    for i, j in _direct_pairs(data, reference):
        sel_ij = (data.treat1 == i) & (data.treat2 == j)
        sel_ji = (data.treat1 == j) & (data.treat2 == i)
        y = np.concatenate([data.yi[sel_ij], -data.yi[sel_ji]])
        w = 1.0 / (np.concatenate([data.vi[sel_ij], data.vi[sel_ji]]) + fit.tau2)
        d_dir, v_dir = float(np.sum(w * y) / np.sum(w)), float(1.0 / np.sum(w))
        d_net, v_net = fit.contrast(i, j)
        out.append(_split_row(data, i, j, int(y.size), d_net, v_net, d_dir, v_dir))
    return tuple(out)


def _direct_pairs(data: NetworkData, reference: int) -> list[tuple[int, int]]:
    pairs = {tuple(sorted((int(a), int(b)))) for a, b in zip(data.treat1, data.treat2)}
    oriented = [(j, i) if i == reference else (i, j) for i, j in pairs]
    return sorted(oriented, key=lambda p: (reference not in p, data.treatments[p[0]], data.treatments[p[1]]))


def _split_row(data: NetworkData, i: int, j: int, k: int, d_net: float, v_net: float, d_dir: float,
               v_dir: float) -> SplitRow:
    prop = v_net / v_dir
    base = dict(treat1=data.treatments[i], treat2=data.treatments[j], k=k, prop_direct=prop, network=d_net,
                network_se=float(np.sqrt(v_net)), direct=d_dir, direct_se=float(np.sqrt(v_dir)))
    if abs(prop - 1.0) < _EPS_P or prop > 1.0:
        return SplitRow(**base, indirect=None, indirect_se=None, difference=None, difference_se=None, z=None,
                        p_value=None)
    d_ind = (d_net - prop * d_dir) / (1.0 - prop)
    v_ind = v_net / (1.0 - prop)
    diff = d_dir - d_ind
    se = float(np.sqrt(v_dir + v_ind))
    z = diff / se
    return SplitRow(**base, indirect=d_ind, indirect_se=float(np.sqrt(v_ind)), difference=diff, difference_se=se,
                    z=z, p_value=float(dist.norm_two_sided_p(z)))


def i2_with_ci(q: float, df: int, level: float) -> tuple[float | None, float | None, float | None]:
    """I2 = (Q - df)/Q in percent with the Higgins & Thompson (2002) interval, as netmeta prints it (meta's
    ``isquared``): a CI for log H = log sqrt(Q/df), transformed by (H^2 - 1)/H^2, each bound at least 0."""
    if df < 1:
        return None, None, None
    k = df + 1
    if q > k:
        se = 0.5 * (np.log(q) - np.log(df)) / (np.sqrt(2.0 * q) - np.sqrt(2.0 * k - 3.0))
    elif k > 2:
        se = np.sqrt(1.0 / (2.0 * (k - 2)) * (1.0 - 1.0 / (3.0 * (k - 2) ** 2)))
    else:
        se = float("nan")
    log_h = 0.5 * np.log(q / df) if q > 0 else -np.inf
    z = dist.norm_crit(dist.alpha_from_level(level))

    def i2(x: float) -> float:
        h = max(float(np.exp(x)), 1.0)
        return 100.0 * (h * h - 1.0) / (h * h)

    bounds = (i2(log_h - z * se), i2(log_h + z * se)) if np.isfinite(se) else (None, None)
    return i2(log_h), bounds[0], bounds[1]
