"""A realistic synthetic results document (docs/architecture.md, "The results document") for report tests.

The numbers are plausible, not fitted: the report layer never computes statistics, so it only needs
well-formed input. Everything is generated from a seeded RNG so the document is the same on every call.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
from typing import Any

CONDITIONS = {"depression": ["cbt", "ipt", "bat"], "ptsd": ["cbt", "emdr"]}
COMPARATORS = ["waitlist", "care-as-usual"]
ROB = ["low", "some", "high"]
FORMATS = ["individual", "group", "guided-self-help"]


def model(rng: random.Random, k: int, centre: float = 0.5) -> dict[str, Any]:
    """A MODEL dict with consistent-looking values."""
    est = round(centre + rng.uniform(-0.3, 0.3), 6)
    se = round(0.4 / math.sqrt(k) + 0.02, 6)
    half = 2.2 * se
    tau2 = round(rng.uniform(0.0, 0.15), 6)
    i2 = round(rng.uniform(0.0, 85.0), 4)
    return {
        "k": k, "estimate": est, "se": se, "ci_lower": est - half, "ci_upper": est + half,
        "statistic": est / se, "p_value": 0.0004 if est / se > 3.5 else 0.03, "df": float(k - 1),
        "tau2": tau2, "tau2_ci": [0.0, tau2 * 3 + 0.01], "tau": math.sqrt(tau2), "I2": i2,
        "I2_ci": [max(0.0, i2 - 30.0), min(99.0, i2 + 10.0)], "H2": 100.0 / (100.0 - i2), "Q": 1.5 * k,
        "Q_df": k - 1, "Q_p": 0.2, "pi_lower": est - half - 0.4, "pi_upper": est + half + 0.4,
        "nnt": round(1.0 / max(est * 0.3, 0.01), 4), "estimator": "REML", "test": "knha", "message": None,
    }


def make_results(sizes: tuple[int, ...] = (3, 12, 120), seed: int = 1,
                 conditions: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Build the document: conditions x approaches x comparators, cells with the given study counts."""
    rng = random.Random(seed)
    trials: dict[str, Any] = {}
    cells: list[dict[str, Any]] = []
    overview: dict[str, list[dict[str, Any]]] = {}
    size_iter = iter(sizes * 20)
    for condition, approaches in (conditions or CONDITIONS).items():
        for approach in approaches:
            for comparator in COMPARATORS:
                k = next(size_iter)
                cells.append(_cell(rng, trials, condition, approach, comparator, k))
    cells.append(_too_few(condition="ptsd", approach="emdr", comparator="cbt"))
    cells.sort(key=lambda c: c["id"])
    for cell in cells:
        if cell["status"] == "ok":
            overview.setdefault(cell["condition"], []).append({
                "approach": cell["approach"], "comparator": cell["comparator"], "time": cell["time"],
                "k": cell["k"], "estimate": cell["main"]["estimate"], "ci_lower": cell["main"]["ci_lower"],
                "ci_upper": cell["main"]["ci_upper"], "cell": cell["id"], "rank": 0})
    for rows in overview.values():
        rows.sort(key=lambda r: -r["estimate"])
        for i, row in enumerate(rows, 1):
            row["rank"] = i
    return {
        "schema_version": 1,
        "metapsych_version": "0.1.0",
        "methods": {"measure": "g", "estimator": "REML", "test": "knha", "tau2_ci": "Q-profile",
                    "I2": "metafor tau2-based", "prediction_interval": "metafor predict()", "level": 0.95,
                    "dependency": "aggregate (rho=0.6)", "min_studies": 2,
                    "text": "Effects were pooled with a random-effects model (REML, Hartung-Knapp)."},
        "inputs": {"trials": {t: hashlib.sha256(t.encode()).hexdigest() for t in sorted(trials)},
                   "config_sha256": "c" * 64},
        "trials": trials,
        "cells": cells,
        "overview": overview,
        "moderators": {"depression": {"year": _moderator(rng, cells, "year"),
                                      "n_sessions": _moderator(rng, cells, "n_sessions")}},
        "network": {"depression": _network()},
        "not_estimable": [{"cell": "ptsd.emdr.vs.cbt.post", "reason": "1 trial (minimum 2)"}],
    }


def _cell(rng: random.Random, trials: dict[str, Any], condition: str, approach: str, comparator: str,
          k: int) -> dict[str, Any]:
    cell_id = f"{condition}.{approach}.vs.{comparator}.post"
    studies = []
    for i in range(k):
        trial = f"{condition[:3]}-{approach}-{comparator[:2]}-{i:03d}"
        year = 1990 + (i * 7) % 34
        rob = ROB[i % 3]
        trials[trial] = {"study": f"Author{i}, {year}", "citation": f"Author{i} A ({year}). A trial. J Test 1:{i}.",
                         "year": year, "condition": condition, "rob": rob}
        yi = round(rng.gauss(0.5, 0.35), 6)
        vi = round(rng.uniform(0.02, 0.15), 6)
        se = math.sqrt(vi)
        studies.append({"trial": trial, "study": trials[trial]["study"], "yi": yi, "vi": vi, "se": se,
                        "ci_lower": yi - 1.96 * se, "ci_upper": yi + 1.96 * se, "weight": 0.0,
                        "n_arm1": rng.randint(15, 150), "n_arm2": rng.randint(15, 150), "rob": rob, "year": year,
                        "format": FORMATS[i % 3], "comparator": comparator, "formula": "SMD (Hedges' g), M/SD"})
    total = sum(1 / (s["vi"] + 0.05) for s in studies)
    for s in studies:
        s["weight"] = 100.0 / (s["vi"] + 0.05) / total
    main = model(rng, k)
    cell = {
        "id": cell_id, "condition": condition, "approach": approach, "comparator": comparator, "time": "post",
        "analysis": "vs-control", "status": "ok", "message": None, "k": k, "n_trials": k,
        "n_participants": sum(s["n_arm1"] + s["n_arm2"] for s in studies), "main": main,
        "sensitivity": [dict(model(rng, k), model=name) for name in ("overall", "lowest", "highest")]
        + [dict(model(rng, max(k - 1, 2), centre=-0.2 if k == 3 else 0.5), model="low_rob")],
        "studies": studies,
        "subgroups": _subgroups(rng, studies) if k >= 12 else {},
        "influence": _influence(studies, main),
        "bias": _bias(k, main),
        "cumulative": [{"study": s["study"], "year": s["year"], "estimate": main["estimate"] + 0.3 / (j + 1),
                        "ci_lower": main["ci_lower"] - 1.0 / (j + 1), "ci_upper": main["ci_upper"] + 1.0 / (j + 1)}
                       for j, s in enumerate(sorted(studies, key=lambda s: (s["year"], s["study"])))],
    }
    cell["inputs_sha256"] = hashlib.sha256(json.dumps(cell, sort_keys=True).encode()).hexdigest()
    return cell


def _too_few(condition: str, approach: str, comparator: str) -> dict[str, Any]:
    return {"id": f"{condition}.{approach}.vs.{comparator}.post", "condition": condition, "approach": approach,
            "comparator": comparator, "time": "post", "analysis": "head-to-head", "status": "too_few_trials",
            "message": "1 trial (minimum 2)", "k": 1, "n_trials": 1, "n_participants": 80, "main": None,
            "sensitivity": [], "studies": [], "subgroups": {}, "influence": {}, "bias": {}, "cumulative": [],
            "inputs_sha256": "f" * 64}


def _subgroups(rng: random.Random, studies: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for var, key in (("format", "format"), ("risk_of_bias", "rob")):
        levels = sorted({s[key] for s in studies})
        out[var] = {"levels": {lv: model(rng, sum(s[key] == lv for s in studies)) for lv in levels},
                    "test": {"Q_between": 3.2, "df": len(levels) - 1, "p_value": 0.2, "method": "separate tau2"},
                    "test_common_tau2": {"QM": 2.9, "df": len(levels) - 1, "p_value": 0.23}}
    return out


def _influence(studies: list[dict[str, Any]], main: dict[str, Any]) -> dict[str, Any]:
    loo = [{"study": s["study"], "estimate": main["estimate"] - 0.01 * (s["yi"] - main["estimate"]),
            "ci_lower": main["ci_lower"], "ci_upper": main["ci_upper"], "tau2": main["tau2"], "I2": main["I2"],
            "Q": main["Q"]} for s in studies]
    infl = [{"study": s["study"], "rstudent": (s["yi"] - main["estimate"]) / s["se"], "dffits": 0.1,
             "cooks_d": 0.05, "cov_r": 1.01, "hat": s["weight"] / 100, "weight": s["weight"],
             "influential": i == 0} for i, s in enumerate(studies)]
    baujat = [{"study": s["study"], "x": (s["yi"] - main["estimate"]) ** 2 / s["vi"],
               "y": abs(s["yi"] - main["estimate"]) * s["weight"] / 100} for s in studies]
    return {"leave_one_out": loo, "influence": infl, "baujat": baujat,
            "outliers": [studies[0]["study"]] if len(studies) > 3 else []}


def _bias(k: int, main: dict[str, Any]) -> dict[str, Any]:
    if k < 10:
        return {"egger": None, "rank_test": None, "trim_and_fill": None, "fail_safe_n": None,
                "note": "Publication-bias tests need at least 10 studies (k = %d)." % k}
    return {"egger": {"statistic": 1.9, "p_value": 0.06, "limit_estimate": 0.31},
            "rank_test": {"tau": 0.12, "p_value": 0.34},
            "trim_and_fill": {"k0": 2, "side": "left", "estimate": main["estimate"] - 0.05,
                              "ci_lower": main["ci_lower"] - 0.05, "ci_upper": main["ci_upper"] - 0.05,
                              "filled": [{"yi": main["estimate"] - 0.8, "vi": 0.05},
                                         {"yi": main["estimate"] - 0.6, "vi": 0.09}]},
            "fail_safe_n": {"rosenthal": 950, "orwin": 40},
            "pet_peese": {"pet": {"estimate": 0.2, "p_value": 0.1}, "peese": {"estimate": 0.35, "p_value": 0.01}},
            "selection_model": None, "note": None}


def _moderator(rng: random.Random, cells: list[dict[str, Any]], name: str) -> dict[str, Any]:
    points = [{"trial": s["trial"], "x": float(s["year"] if name == "year" else 8 + i % 12), "yi": s["yi"],
               "vi": s["vi"]} for c in cells if c["condition"] == "depression" for i, s in enumerate(c["studies"][:15])]
    return {"k": len(points), "coefficients": {"intrcpt": {"estimate": 0.5, "se": 0.1, "ci_lower": 0.3,
                                                           "ci_upper": 0.7, "p_value": 0.001},
                                               name: {"estimate": -0.01, "se": 0.005, "ci_lower": -0.02,
                                                      "ci_upper": 0.0, "p_value": 0.05}},
            "QM": 3.9, "QM_df": 1, "QM_p": 0.048, "R2": 12.5, "points": points}


def _network() -> dict[str, Any]:
    treats = ["bat", "cbt", "ipt", "waitlist", "care-as-usual"]
    est = {"bat": 0.6, "cbt": 0.7, "ipt": 0.55, "waitlist": -0.2, "care-as-usual": 0.0}
    league = {a: {b: {"estimate": est[a] - est[b], "ci_lower": est[a] - est[b] - 0.3,
                      "ci_upper": est[a] - est[b] + 0.3} for b in treats if b != a} for a in treats}
    return {"reference": "care-as-usual", "tau2": 0.04, "Q_total": 30.1, "Q_within": 20.0, "Q_between": 10.1,
            "estimates": {t: {"estimate": est[t], "se": 0.1, "ci_lower": est[t] - 0.2, "ci_upper": est[t] + 0.2}
                          for t in treats},
            "league": league, "p_scores": {t: round(0.2 + est[t] / 2, 4) for t in treats},
            "sucra": {t: round(0.2 + est[t] / 2, 4) for t in treats},
            "split": [{"comparison": "cbt:waitlist", "direct": 0.95, "indirect": 0.5, "difference": 0.45,
                       "p_value": 0.02},
                      {"comparison": "ipt:care-as-usual", "direct": 0.55, "indirect": 0.52, "difference": 0.03,
                       "p_value": 0.8}],
            "components": [treats],
            "graph": {"nodes": [{"treatment": t, "n_trials": 5, "n_participants": 500} for t in treats],
                      "edges": [{"treat1": "cbt", "treat2": "waitlist", "n_trials": 12},
                                {"treat1": "ipt", "treat2": "care-as-usual", "n_trials": 4},
                                {"treat1": "bat", "treat2": "care-as-usual", "n_trials": 3},
                                {"treat1": "cbt", "treat2": "ipt", "n_trials": 2}]}}


def with_edit(results: dict[str, Any], cell_id: str, delta: float) -> dict[str, Any]:
    """A copy in which one cell's pooled estimate moved by ``delta`` and its input hash changed."""
    new = copy.deepcopy(results)
    for cell in new["cells"]:
        if cell["id"] == cell_id:
            for key in ("estimate", "ci_lower", "ci_upper"):
                cell["main"][key] += delta
            cell["inputs_sha256"] = hashlib.sha256((cell["inputs_sha256"] + "x").encode()).hexdigest()
    return new
