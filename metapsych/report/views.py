"""View models: the results document rearranged for the templates (index, cell pages, README).

Nothing here computes a statistic: values are looked up, ordered and labelled. The one judgement made
here is the *conclusion* of a model (benefit / harm / unclear from where its CI lies), used to flag cells
whose conclusion changes under a sensitivity model.
"""

from __future__ import annotations

from typing import Any

from metapsych.report.changes import conclusion
from metapsych.report.jobs import MIN_K_FUNNEL, safe_name, subgroup_blocks
from metapsych.report.style import fmt, fmt_ci, fmt_p, p_text

SENSITIVITY_LABELS = {
    "overall": "all effects (no aggregation)", "combined": "combined within trials", "lowest": "lowest effect per trial",
    "highest": "highest effect per trial", "outliers_removed": "outliers removed",
    "influence_removed": "influential cases removed", "low_rob": "low risk of bias only",
    "three_level": "three-level model", "three_level_che": "three-level CHE model (robust)",
}


def model_row(model: dict[str, Any] | None, label: str, main_conclusion: str | None = None) -> dict[str, Any]:
    """A MODEL dict plus a label, its conclusion and whether that differs from the main model's."""
    row = dict(model or {})
    row["label"] = label
    row["conclusion"] = conclusion(model)
    row["flag"] = main_conclusion is not None and row["conclusion"] != main_conclusion
    for key in ("k", "estimate", "ci_lower", "ci_upper", "p_value", "tau2", "I2", "pi_lower", "pi_upper", "nnt"):
        row.setdefault(key, None)
    return row


def sensitivity_flags(cell: dict[str, Any]) -> list[str]:
    """Names of the sensitivity models under which the cell's conclusion differs from the main model's."""
    main = conclusion(cell.get("main"))
    return [str(m.get("model")) for m in cell.get("sensitivity") or []
            if conclusion(m) not in (main, "not estimable")]


def plot_paths(stems: set[str], stem: str, prefix: str) -> tuple[str | None, str | None]:
    """(svg, png) relative paths of a plot, or (None, None) when it was not drawn."""
    if stem not in stems:
        return None, None
    return f"{prefix}plots/{stem}.svg", f"{prefix}plots/{stem}.png"


def bias_min_k(results: dict[str, Any]) -> int:
    """The k from which funnel plots and small-study tests are shown (methods.bias_min_studies, else 10)."""
    value = (results.get("methods") or {}).get("bias_min_studies")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else MIN_K_FUNNEL


def cell_page(results: dict[str, Any], cell: dict[str, Any], stems: set[str]) -> dict[str, Any]:
    """Context for templates/cell.html.j2."""
    cid = cell["id"]
    main_c = conclusion(cell.get("main"))
    trials = results.get("trials") or {}
    plots = {name: plot_paths(stems, f"{cid}.{name}", "../")[0]
             for name in ("forest", "funnel", "baujat", "cumulative", "rob")}
    plots["forest_png"] = plot_paths(stems, f"{cid}.forest", "../")[1]
    return {
        "cell": cell,
        "main": model_row(cell.get("main"), "main model"),
        "main_detail": _main_detail(cell.get("main") or {}),
        "plots": plots,
        "sensitivity": [model_row(m, SENSITIVITY_LABELS.get(str(m.get("model")), str(m.get("model"))), main_c)
                        for m in cell.get("sensitivity") or []],
        "flags": sensitivity_flags(cell),
        "subgroups": _subgroups(cell, stems),
        "influence": _influence(cell.get("influence") or {}),
        "bias": _bias(cell.get("bias") or {}, len(cell.get("studies") or []), bias_min_k(results),
                      (results.get("methods") or {}).get("level")),
        "bias_min_k": bias_min_k(results),
        "studies": [dict(s, citation=(trials.get(s.get("trial")) or {}).get("citation")) for s in
                    cell.get("studies") or []],
        "methods_paragraph": methods_paragraph(results.get("methods") or {}, cell),
    }


def _main_detail(main: dict[str, Any]) -> list[tuple[str, str]]:
    if not main:
        return []
    tau2_ci = main.get("tau2_ci") or [None, None]
    i2_ci = main.get("I2_ci") or [None, None]
    df = main.get("df")
    return [
        ("g [95% CI]", f"{fmt(main.get('estimate'), 3)} {fmt_ci(main.get('ci_lower'), main.get('ci_upper'), 3)}"),
        ("standard error", fmt(main.get("se"), 4)),
        ("test statistic", f"{fmt(main.get('statistic'), 3)}" + (f" (df = {fmt(df, 0)})" if df is not None else "")
         + f", {p_text(main.get('p_value'))}"),
        ("τ² [95% CI]", f"{fmt(main.get('tau2'), 4)} {fmt_ci(tau2_ci[0], tau2_ci[1], 4)}"),
        ("τ", fmt(main.get("tau"), 4)),
        ("I² % [95% CI]", f"{fmt(main.get('I2'), 1)} {fmt_ci(i2_ci[0], i2_ci[1], 1)}"),
        ("H²", fmt(main.get("H2"), 3)),
        ("Q", f"{fmt(main.get('Q'), 3)} (df = {main.get('Q_df', '–')}), {p_text(main.get('Q_p'))}"),
        ("prediction interval", fmt_ci(main.get("pi_lower"), main.get("pi_upper"), 3)),
        ("NNT (Furukawa-Leucht)", fmt(main.get("nnt"), 1)),
        ("estimator / test", f"{main.get('estimator') or '–'} / {main.get('test') or '–'}"),
    ]


def _subgroups(cell: dict[str, Any], stems: set[str]) -> list[dict[str, Any]]:
    out = []
    for variable, block in sorted((cell.get("subgroups") or {}).items()):
        stem = f"{cell['id']}.subgroup-{safe_name(variable, 'subgroups')}"
        has_plot = stem in stems and bool(subgroup_blocks(cell, variable, block))
        out.append({"name": variable,
                    "levels": [model_row(m, str(level)) for level, m in sorted((block.get("levels") or {}).items())],
                    "test": {k: (block.get("test") or {}).get(k) for k in ("Q_between", "df", "p_value")},
                    "common": block.get("test_common_tau2"),
                    "plot": f"../plots/{stem}.svg" if has_plot else None})
    return out


def _influence(payload: dict[str, Any]) -> dict[str, Any] | None:
    loo = payload.get("leave_one_out") or []
    infl = {str(r.get("study")): r for r in payload.get("influence") or []}
    if not loo and not infl:
        return None
    names = [str(r.get("study")) for r in loo] or list(infl)
    loo_by = {str(r.get("study")): r for r in loo}
    keys = ("estimate", "ci_lower", "ci_upper", "tau2", "I2", "rstudent", "dffits", "cooks_d", "cov_r", "hat",
            "weight", "influential")
    rows = [{"study": n, **{k: None for k in keys}, **loo_by.get(n, {}), **infl.get(n, {})} for n in names]
    return {"rows": rows, "outliers": [str(o) for o in payload.get("outliers") or []]}


def _bias(payload: dict[str, Any], k: int, min_k: int, level: Any) -> dict[str, Any]:
    rows = []
    for key, label, summarise in BIAS_ROWS:
        value = payload.get(key)
        if isinstance(value, dict):
            rows.append((label, _safe_summary(summarise, value) + _level_note(value, level)))
    note = payload.get("note") or payload.get("bias_note")
    if not rows and not note and k < min_k:
        note = f"Publication-bias tests are reported only for k ≥ {min_k} (k = {k})."
    return {"rows": rows, "note": note}


def _level_note(d: dict[str, Any], level: Any) -> str:
    """A method whose interval is not at the report's level says so (trim-and-fill refits the filled data at
    95%, as metafor does)."""
    own = d.get("level")
    if not isinstance(own, float) or not isinstance(level, float) or own == level:
        return ""
    return f" ({fmt(100 * own, 0)}% CI, as metafor gives it)"


def _safe_summary(summarise: Any, value: dict[str, Any]) -> str:
    """The method's own summary, or the generic one when the payload lacks an expected key."""
    try:
        return summarise(value)
    except (KeyError, TypeError, ValueError):
        return describe(value)


def _ci(d: dict[str, Any], lo: str = "ci_lower", hi: str = "ci_upper") -> str:
    return fmt_ci(d.get(lo), d.get(hi))


def _egger(d: dict[str, Any]) -> str:
    df = f" (df = {fmt(d['df'], 0)})" if d.get("df") is not None else ""
    return (f"test statistic {fmt(d['statistic'])}{df}, {p_text(d['p_value'])}; limit estimate "
            f"{fmt(d.get('limit_estimate'))} {_ci(d, 'limit_ci_lower', 'limit_ci_upper')}")


def _trimfill(d: dict[str, Any]) -> str:
    return (f"{d['k0']} studies imputed on the {d.get('side', '–')}; adjusted g = {fmt(d['estimate'])} {_ci(d)}")


def _failsafe(d: dict[str, Any]) -> str:
    target = f" (target g {fmt(d['orwin_target'])})" if d.get("orwin_target") is not None else ""
    return f"Rosenthal {describe(d.get('rosenthal'))}; Orwin {describe(d.get('orwin'))}{target}"


def _pet_peese(d: dict[str, Any]) -> str:
    parts = [f"{name.upper()} g = {fmt(d[name]['estimate'])} {_ci(d[name])}, {p_text(d[name].get('p_value'))}"
             for name in ("pet", "peese") if isinstance(d.get(name), dict)]
    chosen = f"; chosen: {d['chosen']}" if d.get("chosen") else ""
    return "; ".join(parts) + chosen


def _selection(d: dict[str, Any]) -> str:
    lrt = f"; likelihood-ratio test {fmt(d['lrt'])}, {p_text(d.get('lrt_p'))}" if d.get("lrt") is not None else ""
    return f"adjusted g = {fmt(d['estimate'])} {_ci(d)}{lrt}"


BIAS_ROWS = (
    ("egger", "Egger's regression test", _egger),
    ("rank_test", "Begg's rank correlation", lambda d: f"Kendall's τ = {fmt(d['tau'], 3)}, {p_text(d['p_value'])}"),
    ("trim_and_fill", "Trim-and-fill", _trimfill),
    ("fail_safe_n", "Fail-safe N", _failsafe),
    ("pet_peese", "PET-PEESE", _pet_peese),
    ("selection_model", "Step-function selection model", _selection),
)


def describe(value: Any) -> str:
    """A compact text for a nested payload (keys in order, numbers with fixed decimals, points omitted)."""
    if isinstance(value, dict):
        parts = [f"{k}: {describe(v)}" if isinstance(v, dict) else
                 f"p {fmt_p(v)}" if k == "p_value" and isinstance(v, float) else f"{k} = {describe(v)}"
                 for k, v in sorted(value.items()) if k not in ("filled", "fill_yi", "fill_vi") and v is not None]
        return "; ".join(parts) if parts else "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else fmt(value, 3)
    if isinstance(value, list):
        return ", ".join(describe(v) for v in value)
    return str(value)


def methods_paragraph(methods: dict[str, Any], cell: dict[str, Any]) -> str:
    """Every analytic choice behind this cell, in one paragraph."""
    main = cell.get("main") or {}
    sens = ", ".join(SENSITIVITY_LABELS.get(str(m.get("model")), str(m.get("model")))
                     for m in cell.get("sensitivity") or []) or "none"
    level = methods.get("level")
    return (
        f"{methods.get('text') or ''} For this cell, {cell.get('k')} effect sizes ({methods.get('measure', 'g')}) "
        f"from {cell.get('n_trials')} trials comparing {cell.get('approach')} with {cell.get('comparator')} at "
        f"{cell.get('time')} (analysis “{cell.get('analysis')}”) were pooled with a random-effects model: "
        f"τ² estimator {main.get('estimator') or methods.get('estimator')}, "
        f"{main.get('test') or methods.get('test')} inference, confidence level "
        f"{level if level is not None else '–'}; τ² CI: {methods.get('tau2_ci', '–')}; I²: {methods.get('I2', '–')}; "
        f"prediction interval: {methods.get('prediction_interval', '–')}; dependent effects: "
        f"{methods.get('dependency', '–')}; minimum trials per cell: {methods.get('min_studies', '–')}. "
        f"Sensitivity models: {sens}. Publication-bias tests and the funnel plot require k ≥ "
        f"{methods.get('bias_min_studies') or MIN_K_FUNNEL}."
    ).strip()


def conditions(results: dict[str, Any], stems: set[str], prefix: str = "") -> list[dict[str, Any]]:
    """Per condition: overview rows (ranked, flagged, linked), ranking plot, network, moderators."""
    cells = {c["id"]: c for c in results.get("cells") or []}
    overview = results.get("overview") or {}
    networks = results.get("network") or {}
    moderators = results.get("moderators") or {}
    names = sorted(set(overview) | set(networks) | set(moderators)
                   | {c.get("condition") for c in cells.values() if c.get("condition")})
    out = []
    for name in names:
        safe = safe_name(name, "condition")
        rows = []
        for r in sorted(overview.get(name) or [], key=_overview_order):
            cell = cells.get(r.get("cell")) or {}
            has_page = cell.get("status") == "ok"
            rows.append({**r, "conclusion": conclusion(r), "flag": sensitivity_flags(cell),
                         "href": f"{prefix}cells/{r['cell']}.html" if has_page else None,
                         "forest_png": plot_paths(stems, f"{r.get('cell')}.forest", prefix)[1]})
        svg, png = plot_paths(stems, f"overview.{safe}", prefix)
        out.append({"name": name, "anchor": f"condition-{safe}", "overview": rows, "ranking_svg": svg,
                    "ranking_png": png, "network": _network(networks.get(name), stems, safe, prefix),
                    "moderators": _moderators(moderators.get(name) or {}, stems, safe, prefix)})
    return out


def ranking_rows(results: dict[str, Any], condition: str) -> list[dict[str, Any]]:
    """The plain data the ranking plot of one condition needs: a header row per comparator and time point
    (ranks are within those groups), then its approaches, best first."""
    cells = {c["id"]: c for c in results.get("cells") or []}
    rows = sorted((results.get("overview") or {}).get(condition) or [], key=_overview_order)
    out: list[dict[str, Any]] = []
    group = None
    for r in rows:
        if r.get("estimate") is None:
            continue
        if (r.get("comparator"), r.get("time")) != group:
            group = (r.get("comparator"), r.get("time"))
            out.append({"label": f"vs {r.get('comparator')}, {r.get('time')}", "header": True})
        out.append({"label": str(r.get("approach")), "k": r.get("k"), "estimate": r.get("estimate"),
                    "ci_lower": r.get("ci_lower"), "ci_upper": r.get("ci_upper"),
                    "flag": bool(sensitivity_flags(cells.get(r.get("cell")) or {}))})
    return out


def _overview_order(row: dict[str, Any]) -> tuple[str, str, int, str]:
    """Ranks are within a comparator and time point: keep those groups together, best first."""
    return (str(row.get("time")), str(row.get("comparator")), row.get("rank") or 0, str(row.get("cell")))


def _network(payload: dict[str, Any] | None, stems: set[str], safe: str, prefix: str) -> dict[str, Any] | None:
    if not payload:
        return None
    estimates = payload.get("estimates") or {}
    p_scores = payload.get("p_scores") or {}
    sucra = payload.get("sucra") or {}
    ranking = sorted(estimates, key=lambda t: (-(p_scores.get(t) or 0.0), t))
    split = payload.get("split") or []
    return {
        **{k: payload.get(k) for k in ("reference", "tau2", "Q_total", "Q_within", "Q_between")},
        "graph_svg": plot_paths(stems, f"network.{safe}", prefix)[0],
        "forest_svg": plot_paths(stems, f"network-forest.{safe}", prefix)[0],
        "forest_png": plot_paths(stems, f"network-forest.{safe}", prefix)[1],
        "multi_arm_studies": payload.get("multi_arm_studies") or [],
        "multi_arm_handling": payload.get("multi_arm_handling") or {},
        "split": split,
        "disagreements": [s for s in split if s.get("p_value") is not None and s["p_value"] < 0.05],
        "ranking": [{"name": t, **{k: (estimates[t] or {}).get(k) for k in ("estimate", "ci_lower", "ci_upper")},
                     "p_score": p_scores.get(t), "sucra": sucra.get(t)} for t in ranking],
        "league": _league(payload.get("league"), ranking),
    }


def _league(league: Any, order: list[str]) -> dict[str, Any] | None:
    """League table as rows x columns; accepts {row: {col: {estimate, ci_lower, ci_upper}}} or a list of
    {treat1, treat2, estimate, ci_lower, ci_upper} (treat1 versus treat2)."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    if isinstance(league, dict):
        pairs = {(str(a), str(b)): v for a, cols in league.items() if isinstance(cols, dict)
                 for b, v in cols.items() if isinstance(v, dict)}
    elif isinstance(league, list):
        pairs = {(str(r.get("treat1")), str(r.get("treat2"))): r for r in league if isinstance(r, dict)}
    if not pairs:
        return None
    names = [t for t in order if any(t in p for p in pairs)] + sorted({t for p in pairs for t in p} - set(order))
    return {"names": names, "rows": [{"name": a, "cells": [pairs.get((a, b)) if a != b else None for b in names]}
                                     for a in names]}


def _moderators(payload: dict[str, Any], stems: set[str], safe: str, prefix: str) -> list[dict[str, Any]]:
    out = []
    for name, reg in sorted(payload.items()):
        svg, png = plot_paths(stems, f"moderator.{safe}.{safe_name(name, 'moderators')}", prefix)
        coefs = reg.get("coefficients") or {}
        out.append({
            "name": name, "svg": svg, "png": png,
            "test_text": (f"k = {reg.get('k', '–')}; QM({reg.get('QM_df', '–')}) = {fmt(reg.get('QM'))}, "
                          f"{p_text(reg.get('QM_p'))}; R² = {fmt(reg.get('R2'), 1)}%"
                          + (f". Note: {reg['message']}" if reg.get("message") else "")) if reg.get("QM") is not None
            else f"Not estimable (k = {reg.get('k', '–')}){': ' + str(reg['message']) if reg.get('message') else ''}.",
            "coefficients": [{"name": term, **({k: v.get(k) for k in ("estimate", "ci_lower", "ci_upper", "p_value")}
                                               if isinstance(v, dict) else
                                               {"estimate": v, "ci_lower": None, "ci_upper": None, "p_value": None})}
                             for term, v in coefs.items()],
        })
    return out


def cell_rows(results: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """The summary table of every cell (index and README)."""
    rows = []
    for cell in sorted(results.get("cells") or [], key=lambda c: c["id"]):
        main = cell.get("main") or {}
        rows.append({**{k: cell.get(k) for k in ("id", "condition", "approach", "comparator", "time", "k",
                                                  "n_participants", "status")},
                     **{k: main.get(k) for k in ("estimate", "ci_lower", "ci_upper", "I2")},
                     "href": f"{prefix}cells/{cell['id']}.html" if cell.get("status") == "ok" else None})
    return rows
