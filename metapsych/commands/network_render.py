"""Terminal tables for ``metapsych network``: estimates, ranking, Q decomposition, node-split, league."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _p(x: float | None) -> str:
    if x is None:
        return "-"
    return "<0.0001" if x < 1e-4 else f"{x:.4f}"


def render(payload: dict[str, Any], console: Console | None = None) -> None:
    """Print one network payload (and its other components) as rich tables."""
    console = console or Console(highlight=False)
    _render_one(payload, console)
    for comp in payload.get("components", [])[1:]:
        console.rule(f"Separate part: {', '.join(comp['treatments'])}")
        _render_one(comp["fit"], console)


def _render_one(p: dict[str, Any], console: Console) -> None:
    pct = round(p["level"] * 100 if p["level"] < 1 else p["level"])
    model = "common-effect" if p["model"] == "common" else f"random-effects ({p['tau2_method']})"
    console.print(f"Network meta-analysis, {model}: {len(p['treatments'])} treatments, {p['n_studies']} studies, "
                  f"{p['n_contrasts']} contrasts; reference '{p['reference']}'")
    console.print(f"tau2 = {_f(p['tau2'], 4)} (REML {_f(p['tau2_reml'], 4)}, DL-type {_f(p['tau2_dl'], 4)})")
    console.print(_estimates(p, pct))
    console.print(_ranking(p))
    console.print(_q_table(p))
    if p["split"]:
        console.print(_split(p))
    console.print(_league(p))
    for item in p["disagreements"]:
        console.print(f"direct and indirect evidence disagree (p < 0.05): {item}")
    if p["multi_arm_studies"]:
        handling = p["multi_arm_handling"]
        console.print(f"multi-arm studies ({len(p['multi_arm_studies'])}): estimates use {handling['estimates']}; "
                      f"Q within and between designs use {handling['Q_within, Q_between, design_by_treatment_random']}")
    if p.get("funnel"):
        f = p["funnel"]
        console.print(f"comparison-adjusted funnel (order {', '.join(f['order'])}): "
                      f"Egger bias {_f(f['egger_bias'], 3)} (se {_f(f['egger_se'], 3)}), "
                      f"t({f['egger_df']}) = {_f(f['egger_statistic'], 2)}, "
                      f"p = {_p(f['egger_p'])}", highlight=False)
    for note in p["notes"]:
        console.print(f"note: {note}")


def _estimates(p: dict[str, Any], pct: int) -> Table:
    table = Table(title=f"Versus {p['reference']}")
    for col in ("treatment", "estimate", "se", f"{pct}% CI", "p"):
        table.add_column(col, justify="left" if col == "treatment" else "right")
    for treat, e in p["estimates"].items():
        table.add_row(treat, _f(e["estimate"]), _f(e["se"]), f"[{_f(e['ci_lower'])}, {_f(e['ci_upper'])}]",
                      _p(e["p_value"]))
    return table


def _ranking(p: dict[str, Any]) -> Table:
    better = "smaller" if p["small_values"] == "good" else "larger"
    table = Table(title=f"Ranking ({better} effects are better)")
    for col in ("treatment", "P-score", "SUCRA", "mean rank"):
        table.add_column(col, justify="left" if col == "treatment" else "right")
    for treat in sorted(p["p_scores"], key=lambda t: (-(p["p_scores"][t] or 0.0), t)):
        table.add_row(treat, _f(p["p_scores"][treat], 4), _f(p["sucra"][treat], 4), _f(p["mean_ranks"][treat], 2))
    return table


def _q_table(p: dict[str, Any]) -> Table:
    table = Table(title="Heterogeneity and inconsistency (common-effect Q)")
    for col in ("source", "Q", "df", "p"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for label, key in (("total", "Q_total"), ("within designs", "Q_within"), ("between designs", "Q_between")):
        table.add_row(label, _f(p[key], 2), str(p[f"{key}_df"]), _p(p[f"{key}_p"]))
    dbt = p["design_by_treatment_random"]
    table.add_row(f"between designs, random (tau2 within {_f(dbt['tau2_within'], 4)})", _f(dbt["Q"], 2),
                  str(dbt["df"]), _p(dbt["p_value"]))
    return table


def _split(p: dict[str, Any]) -> Table:
    table = Table(title="Direct versus indirect evidence (back-calculation)")
    for col in ("comparison", "k", "prop. direct", "network", "direct", "indirect", "difference", "p"):
        table.add_column(col, justify="left" if col == "comparison" else "right", no_wrap=col == "comparison")
    for r in p["split"]:
        table.add_row(f"{r['treat1']} vs {r['treat2']}", str(r["k"]), _f(r["prop_direct"], 2), _f(r["network"]),
                      _f(r["direct"]), _f(r["indirect"]), _f(r["difference"]), _p(r["p_value"]))
    return table


def _league(p: dict[str, Any]) -> Table:
    treats = p["treatments"]
    table = Table(title="League table (row versus column)")
    table.add_column("")
    for t in treats:
        table.add_column(t, justify="right")
    for a in treats:
        cells = [a if a == b else _cell(p["league"][a][b]) for b in treats]
        table.add_row(a, *cells)
    return table


def _cell(c: dict[str, Any]) -> str:
    return f"{_f(c['estimate'], 2)}\n[{_f(c['ci_lower'], 2)}, {_f(c['ci_upper'], 2)}]"
