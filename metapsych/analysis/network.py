"""Network meta-analysis per condition: every approach and control type in one connected model.

For each condition, the effects at the configured time point become contrasts between approach codes, or
approach/format (``cbt/group``) with ``network.split_by_format`` (oriented alphabetically, sign flipped where
needed); several effects of one trial for one pair of
approaches are combined with the config's dependency rule. Trials whose contrasts the network model cannot
use are left out and named in the network's notes. Multi-arm trials that report every arm against one
shared arm only are completed with the missing contrasts (``network_data.complete_multiarm``). The reference
is the first of the configured references present in the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from metapsych.analysis.cache import Cache, code_version, sha256_columns, sha256_json
from metapsych.analysis.inputs import trial_effects
from metapsych.analysis.pending import Pending, Planned

if TYPE_CHECKING:
    import pandas as pd

    from metapsych.analysis.config import Config

MAX_RETRIES = 50


# The columns ``contrasts`` reads: a condition's network is cached under their values (and the settings).
CONTRAST_COLUMNS = ("trial", "condition_arm1", "condition_arm2", "format", "format_arm2", "yi", "vi", "n_arm1",
                    "n_arm2")


def network_results(effects: pd.DataFrame, config: Config, cache: Cache | None = None) -> dict:
    """``{condition: network payload}``; an ``{"error": ...}`` entry where no network could be fitted."""
    cache = cache or Cache(None)
    return network_plan(effects, config, cache).compute_here(cache)


def network_plan(effects: pd.DataFrame, config: Config, cache: Cache) -> Planned:
    """The conditions' networks found in the cache, and those to fit (``condition_network``).

    Each condition's payload is cached under the hash of its rows' contrast columns and the settings, so
    that the contrasts are built only for the conditions whose network is not cached.
    """
    from metapsych.analysis.plan import usable_rows

    if not config.network.enabled:
        return Planned([], {}, [])
    rows = usable_rows(effects)
    keep = (rows["time"] == config.network.time) & (rows["condition_arm1"] != rows["condition_arm2"])
    rows = rows.loc[keep, ["condition", *(name for name in CONTRAST_COLUMNS if name in rows)]]
    conditions, cached, pending = [], {}, []
    for condition, group in rows.groupby("condition", sort=True):
        key = _network_key(group, config)
        conditions.append(str(condition))
        payload = cache.get_json("networks", key)
        if payload is None:
            pending.append(Pending(str(condition), "networks", key, condition_network, (group, config), len(group)))
        else:
            cached[str(condition)] = payload
    return Planned(conditions, cached, pending)


def condition_network(rows: pd.DataFrame, config: Config) -> dict:
    """One condition's network payload from its rows: contrasts, then the fitted network."""
    data, completion_notes = contrasts(rows, config)
    return _condition_network(data, config, completion_notes)


def _network_key(rows: pd.DataFrame, config: Config) -> str:
    """Hash of everything a condition's network depends on: the code, the settings (network, level and
    dependency rule) and its rows' contrast columns, exactly and in order."""
    settings = [config.network.model_dump(mode="json"), config.model.level,
                config.dependency.model_dump(mode="json")]
    columns = ((name, rows[name].to_numpy()) for name in CONTRAST_COLUMNS if name in rows)
    return sha256_json([code_version(), settings, sha256_columns(columns)])


def contrasts(rows: pd.DataFrame, config: Config) -> tuple[dict[str, np.ndarray], list[str]]:
    """One contrast per trial and pair of approaches: ``study, treat1, treat2, yi, vi`` (treat1 < treat2).

    Multi-arm trials given against one shared arm only are completed by ``network_data.complete_multiarm``;
    its notes are returned with the contrasts.
    """
    from metapsych.stats.network_data import complete_multiarm

    a, b = (treatment_labels(rows, side, config.network.split_by_format) for side in ("1", "2"))
    flip = a > b
    t1, t2 = np.where(flip, b, a), np.where(flip, a, b)
    keys = [f"{trial}\t{x}\t{y}" for trial, x, y in zip(rows["trial"], t1, t2)]
    frame = rows.assign(trial=keys, yi=np.where(flip, -rows["yi"].to_numpy(dtype=float), rows["yi"]))
    frame = frame.sort_values("trial", kind="stable")
    groups = tuple(sorted(set(keys)))
    yi, vi = trial_effects(frame, groups, config.dependency.method, config.dependency.rho)
    study, treat1, treat2 = (list(part) for part in zip(*(g.split("\t") for g in groups)))
    sizes = _arm_sizes(rows, a, b)
    done = complete_multiarm(study, treat1, treat2, list(yi), list(vi),
                             [sizes.get((s, t), float("nan")) for s, t in zip(study, treat1)],
                             [sizes.get((s, t), float("nan")) for s, t in zip(study, treat2)])
    data = {"study": done.study, "treat1": done.treat1, "treat2": done.treat2, "yi": done.yi, "vi": done.vi}
    return ({key: np.asarray(value, dtype=float if key in ("yi", "vi") else str) for key, value in data.items()},
            done.notes)


def treatment_labels(rows: pd.DataFrame, side: str, by_format: bool) -> np.ndarray:
    """The network treatment of each row's arm ``side`` ("1" or "2"): its approach code, or approach/format."""
    codes = rows[f"condition_arm{side}"].astype(str).to_numpy()
    if not by_format:
        return codes
    column = "format" if side == "1" else "format_arm2"
    formats = rows[column].to_numpy() if column in rows else np.full(codes.size, None)
    return np.array([f"{code}/{fmt}" if isinstance(fmt, str) and fmt else code for code, fmt in zip(codes, formats)])


def _arm_sizes(rows: pd.DataFrame, treat1: np.ndarray, treat2: np.ndarray) -> dict[tuple[str, str], float]:
    """Largest reported n of each (trial, treatment) arm."""
    sizes: dict[tuple[str, str], float] = {}
    for side, codes in (("1", treat1), ("2", treat2)):
        for trial, code, n in zip(rows["trial"], codes, rows[f"n_arm{side}"]):
            if n is not None and np.isfinite(float(n)):
                sizes[(trial, code)] = max(sizes.get((trial, code), 0.0), float(n))
    return sizes


def _condition_network(data: dict[str, np.ndarray], config: Config, notes: list[str]) -> dict:
    from metapsych.stats.network import fit_network, network_payload
    from metapsych.stats.network_data import NetworkDataError

    notes = list(notes)
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
        return payload
    return {"error": "too many trials had to be left out of the network", "notes": notes}
