"""Network meta-analysis per condition: every approach and control type in one connected model.

For each condition, the effects at the configured time point become contrasts between approach codes
(oriented alphabetically, sign flipped where needed); several effects of one trial for one pair of
approaches are combined with the config's dependency rule. Trials whose contrasts the network model cannot
use are left out and named in the network's notes. Multi-arm trials that report every arm against one
shared arm only are completed with the missing contrasts (see ``_complete_multi_arm``). The reference is the first of the configured references present in the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from metapsych.analysis.cache import Cache, code_version, sha256_json
from metapsych.analysis.inputs import trial_effects

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.analysis.config import Config

MAX_RETRIES = 50


def network_results(effects: pd.DataFrame, config: Config, cache: Cache | None = None) -> dict:
    """``{condition: network payload}``; an ``{"error": ...}`` entry where no network could be fitted.

    Each condition's payload is cached under the hash of its contrasts and the network settings.
    """
    from metapsych.analysis.plan import usable_rows

    if not config.network.enabled:
        return {}
    cache = cache or Cache(None)
    rows = usable_rows(effects)
    rows = rows[(rows["time"] == config.network.time) & (rows["condition_arm1"] != rows["condition_arm2"])]
    out = {}
    for condition, group in rows.groupby("condition", sort=True):
        data = contrasts(group, config)
        key = sha256_json([code_version(), config.network.model_dump(mode="json"), config.model.level,
                           {name: [x if isinstance(x, str) else float(x).hex() for x in values]
                            for name, values in data.items()}])
        payload = cache.get_json("networks", key)
        if payload is None:
            payload = _condition_network(data, config)
            cache.put_json("networks", key, payload)
        out[str(condition)] = payload
    return out


def contrasts(rows: pd.DataFrame, config: Config) -> dict[str, np.ndarray]:
    """One contrast per trial and pair of approaches: ``study, treat1, treat2, yi, vi`` (treat1 < treat2)."""
    a = rows["condition_arm1"].astype(str).to_numpy()
    b = rows["condition_arm2"].astype(str).to_numpy()
    flip = a > b
    t1, t2 = np.where(flip, b, a), np.where(flip, a, b)
    keys = [f"{trial}\t{x}\t{y}" for trial, x, y in zip(rows["trial"], t1, t2)]
    frame = rows.assign(trial=keys, yi=np.where(flip, -rows["yi"].to_numpy(dtype=float), rows["yi"]))
    frame = frame.sort_values("trial", kind="stable")
    groups = tuple(sorted(set(keys)))
    yi, vi = trial_effects(frame, groups, config.dependency.method, config.dependency.rho)
    parts = [g.split("\t") for g in groups]
    data = {"study": [p[0] for p in parts], "treat1": [p[1] for p in parts], "treat2": [p[2] for p in parts],
            "yi": list(yi), "vi": list(vi)}
    _complete_multi_arm(data, _arm_sizes(rows))
    return {key: np.asarray(value, dtype=float if key in ("yi", "vi") else str) for key, value in data.items()}


def _arm_sizes(rows: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Largest reported n of each (trial, approach) arm."""
    sizes: dict[tuple[str, str], float] = {}
    for side in ("1", "2"):
        for trial, code, n in zip(rows["trial"], rows[f"condition_arm{side}"], rows[f"n_arm{side}"]):
            if n == n and n is not None:
                sizes[(trial, code)] = max(sizes.get((trial, code), 0.0), float(n))
    return sizes


def _complete_multi_arm(data: dict[str, list], sizes: dict[tuple[str, str], float]) -> None:
    """Add the missing contrasts of multi-arm trials that report every arm against one shared arm.

    A three-arm trial comparing two therapies with one control usually reports only the two comparisons
    with the control, but the network model needs all pairwise contrasts with consistent variances
    (vi(a,b) = s_a + s_b). The shared arm's variance is approximated by 1/n of that arm (the SMD variance
    share of an arm), capped at half the smallest reported variance; the other arms' variances follow,
    and the missing contrasts are the differences of the reported ones (Gleser & Olkin's shared-arm model).
    """
    rows_of: dict[str, list[int]] = {}
    for i, study in enumerate(data["study"]):
        rows_of.setdefault(study, []).append(i)
    for study, idx in rows_of.items():
        pairs = [(data["treat1"][i], data["treat2"][i]) for i in idx]
        arms = {t for pair in pairs for t in pair}
        shared = set.intersection(*(set(pair) for pair in pairs))
        if len(arms) < 3 or len(idx) == len(arms) * (len(arms) - 1) // 2 or len(idx) != len(arms) - 1 or not shared:
            continue
        hub = shared.pop()
        smallest = min(data["vi"][i] for i in idx)
        n_hub = sizes.get((study, hub))
        s_hub = min(1.0 / n_hub if n_hub else smallest / 2, smallest / 2)
        effect = {}
        for i, (a, b) in zip(idx, pairs):
            arm, sign = (a, 1.0) if b == hub else (b, -1.0)
            effect[arm] = (sign * data["yi"][i], data["vi"][i] - s_hub)
        others = sorted(effect)
        for j, a in enumerate(others):
            for b in others[j + 1:]:
                for key, value in (("study", study), ("treat1", a), ("treat2", b),
                                   ("yi", effect[a][0] - effect[b][0]), ("vi", effect[a][1] + effect[b][1])):
                    data[key].append(value)


def _condition_network(data: dict[str, np.ndarray], config: Config) -> dict:
    from metapsych.stats.network import fit_network, network_payload
    from metapsych.stats.network_data import NetworkDataError

    notes: list[str] = []
    for _ in range(MAX_RETRIES):
        treatments = set(data["treat1"]) | set(data["treat2"])
        reference = next((r for r in config.network.reference if r in treatments), None)
        if len(treatments) < 2 or data["yi"].size == 0:
            return {"error": "fewer than two treatments with usable contrasts", "notes": notes}
        try:
            fit = fit_network(data["study"], data["treat1"], data["treat2"], data["yi"], data["vi"],
                              reference=reference, level=config.model.level)
        except NetworkDataError as exc:
            dropped = sorted({str(data["study"][i]) for i in exc.rows})
            notes.append(f"left out {', '.join(dropped)}: {exc.field}: {exc.problem}")
            keep = ~np.isin(data["study"], dropped)
            data = {key: value[keep] for key, value in data.items()}
            continue
        except ValueError as exc:
            return {"error": str(exc), "notes": notes}
        payload = network_payload(fit)
        payload["notes"] = notes + list(payload.get("notes", []))
        for row in payload.get("split", []):  # the report names a node-split row by "treat1:treat2"
            row.setdefault("comparison", f"{row['treat1']}:{row['treat2']}")
        return payload
    return {"error": "too many trials had to be left out of the network", "notes": notes}
