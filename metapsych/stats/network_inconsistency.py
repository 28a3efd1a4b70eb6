"""Inconsistency in a network: netmeta's design-based Q decomposition and back-calculation node-splitting.

* ``decompose_q`` (netmeta ``decomp.design``, Krahn et al. 2013): the generalised Q of the common-effect
  model is split into the sum of within-design Qs (heterogeneity among studies of the same design) and
  the between-designs Q (design-by-treatment inconsistency). The between-designs Q is also given under
  the full design-by-treatment interaction random-effects model, with its DL-type tau2 ("tau.within").
  The decomposition uses basic contrasts (``network_krahn``), exactly as netmeta does.
* ``node_split`` (netmeta ``netsplit``, back-calculation): for every comparison with direct evidence, the
  direct estimate pools the studies of that comparison (inverse variance, plus tau2 in the random model),
  the indirect estimate is backed out of the network estimate, (d_net - p d_dir) / (1 - p) with
  p = var_net / var_dir, and the difference is z-tested.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metapsych.stats import distributions as dist
from metapsych.stats.network_data import NetworkData, design_label
from metapsych.stats.network_krahn import (
    BasicContrasts,
    GlsFit,
    basic_contrasts,
    consistency_design,
    gls,
    interaction_design,
    tau2_within,
)
from metapsych.stats.network_model import GraphFit

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


def decompose_q(data: NetworkData, common: GraphFit, reference: int) -> QDecomposition:
    """netmeta's Q decomposition for a connected network (``print.netmeta`` and ``decomp.design``).

    Q_total is the graph fit's Q over all pairwise contrasts (netmeta's ``Q``). Q_within, Q_between,
    tau2_within and the design-by-treatment random-effects Q are computed on basic contrasts, as
    netmeta's ``nma.krahn`` does: Q_between = Q_net - Q_within of the basic-contrast GLS fits. With
    consistent multi-arm studies Q_within + Q_between = Q_total; see ``network_krahn`` for why not always.
    """
    bc = basic_contrasts(data, reference)
    x_net = consistency_design(bc, data.n_treatments, reference)
    x_des = interaction_design(bc)
    net, within = gls(bc, x_net), gls(bc, x_des)
    tau2_w = tau2_within(bc, x_des)
    q_between_r = gls(bc, x_net, tau2_w).Q - gls(bc, x_des, tau2_w).Q
    df_between = net.df - within.df
    return QDecomposition(
        Q_total=common.Q, Q_total_df=common.df, Q_total_p=_p(common.Q, common.df),
        Q_within=within.Q, Q_within_df=within.df, Q_within_p=_p(within.Q, within.df),
        Q_between=net.Q - within.Q, Q_between_df=df_between, Q_between_p=_p(net.Q - within.Q, df_between),
        tau2_within=tau2_w, Q_between_random=q_between_r, Q_between_random_p=_p(q_between_r, df_between),
        designs=_design_rows(data, bc, within),
    )


def _design_rows(data: NetworkData, bc: BasicContrasts, within: GlsFit) -> tuple[DesignQ, ...]:
    """Within-design Q of each design (netmeta's ``Q.het.design``), by design label."""
    labels = [design_label(data, s) for s in data.studies]
    rows = []
    for label in sorted(set(labels)):
        members = [i for i, d in enumerate(labels) if d == label]
        m = len(data.studies[members[0]].arms)
        q = float(np.sum(within.block_q[members]))
        df = len(members) * (m - 1) - (m - 1)
        rows.append(DesignQ(label, len(members), q, df, _p(q, df)))
    return tuple(rows)


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
