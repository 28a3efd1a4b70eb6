"""The JSON-safe network payload (CLI ``--json`` and the results document's ``network`` section).

Contract keys: ``reference, tau2, Q_total, Q_within, Q_between, estimates, league, p_scores``; added:
``sucra, mean_ranks, split, disagreements, designs, components, graph, notes, multi_arm_handling`` (which
multi-arm model each quantity uses) and the df/p of each Q.
Missing values are ``None``, never NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from metapsych.stats import distributions as dist
from metapsych.stats.values import finite_or_none

if TYPE_CHECKING:
    from metapsych.stats.network import NetworkFit

DISAGREEMENT_P = 0.05
"""Node-split p-value below which direct and indirect evidence are flagged as disagreeing."""

GRAPH_FIT = ("netmeta (Rücker 2012): all pairwise contrasts of a multi-arm study, with the reduced weights of "
             "netmeta's multiarm() (pseudoinverse of the study's Laplacian)")
BASIC_CONTRASTS = ("netmeta decomp.design / nma.krahn (Krahn et al. 2013): the m-1 contrasts of a multi-arm study "
                   "against one baseline arm (the reference, else its alphabetically first arm) with the shared-arm "
                   "covariance")
REML_CONTRASTS = ("metafor rma.mv(random = ~ comp | study, rho = 1/2): the m-1 contrasts of a multi-arm study "
                  "against one baseline arm (the reference, else its first arm) with the shared-arm covariance")


def multi_arm_handling(fit: NetworkFit) -> dict[str, str]:
    """How multi-arm studies enter each quantity of this fit (they agree when a study's contrasts are consistent)."""
    reml = fit.model == "random" and fit.tau2_method == "REML"
    return {"estimates": REML_CONTRASTS + ", by GLS at the REML tau2" if reml
            else GRAPH_FIT + (f", at the {fit.tau2_method} tau2" if fit.model == "random" else ""),
            "Q_total": GRAPH_FIT,
            "Q_within, Q_between, design_by_treatment_random": BASIC_CONTRASTS,
            "tau2_dl": GRAPH_FIT + " (netmeta's DL-type estimator)",
            "tau2_reml": REML_CONTRASTS}


def _interval(est: float, se: float, z: float) -> dict[str, float | None]:
    stat = est / se if se > 0 else None
    return {"estimate": finite_or_none(est), "se": finite_or_none(se), "ci_lower": finite_or_none(est - z * se), "ci_upper": finite_or_none(est + z * se),
            "statistic": finite_or_none(stat), "p_value": None if stat is None else finite_or_none(dist.norm_two_sided_p(stat))}


def payload(fit: NetworkFit, *, nested: bool = False) -> dict[str, Any]:
    """Everything a reader of one network needs; ``nested`` omits the other components."""
    z = fit.z_crit
    ref = fit.reference
    q = fit.q
    out: dict[str, Any] = {
        "reference": ref,
        "model": fit.model,
        "tau2_method": fit.tau2_method,
        "level": fit.level,
        "small_values": fit.small_values,
        "treatments": list(fit.treatments),
        "n_studies": fit.n_studies,
        "n_contrasts": fit.n_contrasts,
        "multi_arm_studies": list(fit.multi_arm_studies),
        "multi_arm_handling": multi_arm_handling(fit),
        "tau2": finite_or_none(fit.tau2),
        "tau": finite_or_none(math.sqrt(fit.tau2)),
        "tau2_reml": finite_or_none(fit.tau2_reml),
        "tau2_dl": finite_or_none(fit.tau2_dl),
        "Q_total": finite_or_none(q.Q_total), "Q_total_df": q.Q_total_df, "Q_total_p": finite_or_none(q.Q_total_p),
        "Q_within": finite_or_none(q.Q_within), "Q_within_df": q.Q_within_df, "Q_within_p": finite_or_none(q.Q_within_p),
        "Q_between": finite_or_none(q.Q_between), "Q_between_df": q.Q_between_df, "Q_between_p": finite_or_none(q.Q_between_p),
        "I2": finite_or_none(fit.I2[0]), "I2_ci": [finite_or_none(fit.I2[1]), finite_or_none(fit.I2[2])],
        "design_by_treatment_random": {"Q": finite_or_none(q.Q_between_random), "df": q.Q_between_df,
                                       "p_value": finite_or_none(q.Q_between_random_p), "tau2_within": finite_or_none(q.tau2_within)},
        "estimates": {t: _interval(*fit.contrast(t, ref), z) for t in fit.treatments if t != ref},
        "league": {a: {b: _interval(*fit.contrast(a, b), z) for b in fit.treatments if b != a}
                   for a in fit.treatments},
        "p_scores": {t: finite_or_none(p) for t, p in zip(fit.treatments, fit.p_scores)},
        "sucra": {t: finite_or_none(p) for t, p in zip(fit.treatments, fit.p_scores)},
        "mean_ranks": {t: finite_or_none(r) for t, r in zip(fit.treatments, fit.mean_ranks)},
        "ranking_method": "P-scores (Rücker & Schwarzer 2015); SUCRA is the analytic SUCRA from expected ranks "
                          "under the normal approximation, which equals the P-score",
        "split": [{"comparison": f"{row.treat1}:{row.treat2}",
                   **{k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in asdict(row).items()}}
                  for row in fit.split],
        "disagreements": [f"{r.treat1} vs {r.treat2}" for r in fit.split
                          if r.p_value is not None and r.p_value < DISAGREEMENT_P],
        "inconsistency_testable": fit.inconsistency_testable,
        "designs": [{"design": d.design, "n_studies": d.n_studies, "Q": finite_or_none(d.Q), "df": d.df,
                     "p_value": finite_or_none(d.p_value)} for d in q.designs],
        "graph": {"nodes": [asdict(n) for n in fit.nodes], "edges": [asdict(e) for e in fit.edges]},
        "notes": list(fit.notes),
    }
    if not nested:
        out["components"] = [_component(fit, True)] + [_component(o, False) for o in fit.others]
    return out


def _component(fit: NetworkFit, main: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"treatments": list(fit.treatments), "n_studies": fit.n_studies,
                             "reference": fit.reference, "analysed": True, "main": main}
    if not main:
        entry["fit"] = payload(fit, nested=True)
    return entry
