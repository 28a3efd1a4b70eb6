"""``metapsych validate [PATH]``: check trial files, list every problem, and summarise the corpus.

Text output: one line per problem (``FILE:LINE: field: problem (expected ...)``), errors first, then a
one-screen summary (trials, arms and comparisons per condition; comparisons per approach). JSON output:
``{"errors": [...], "warnings": [...], "summary": {...}}``. Exit 2 when there is any error, else 0.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from metapsych.errors import InputError, Problem


def run(path: Path, fmt: str = "text", vocabulary: Path | None = None) -> int:
    """Validate ``path`` (a trial file or folder); returns 2 when any error was found, else 0."""
    from metapsych.commands.preflight import unusable_trial_files
    from metapsych.data.load import default_vocabulary, validate_studies

    if fmt not in ("text", "json"):
        raise InputError(f"--format {fmt!r}: unknown output format (expected text or json)")
    vocab = default_vocabulary(vocabulary)
    report = validate_studies(path, vocab)
    report.problems += unusable_trial_files(path) if path.is_dir() else []
    if report.trials.files_checked == 0:
        report.problems.append(Problem(str(path), None, "(folder)", "no trial files found",
                                       "one .yaml or .yml file per trial"))
    summary = summarise(report.trials)
    if fmt == "json":
        payload = {"errors": [p.to_dict() for p in report.errors], "warnings": [p.to_dict() for p in report.warnings],
                   "summary": summary}
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    else:
        _print_text(report, summary)
    return 2 if report.errors else 0


def summarise(trials: Any) -> dict[str, Any]:
    """Counts of trials, arms and comparisons per condition, and comparisons per condition and approach."""
    from metapsych.data.table import trial_comparisons

    conditions: dict[str, Counter[str]] = {}
    approaches: dict[str, Counter[str]] = {}
    for loaded in trials:
        trial = loaded.trial
        counts = conditions.setdefault(trial.condition, Counter())
        counts["trials"] += 1
        counts["arms"] += len(trial.arms)
        counts["outcomes"] += len(trial.outcomes)
        arms = {arm.id: arm.approach for arm in trial.arms}
        pairs = trial_comparisons(trial, trials.vocabulary)
        counts["comparisons"] += len(pairs)
        for first, _ in pairs:
            approaches.setdefault(arms[first], Counter())[trial.condition] += 1
    return {
        "files": trials.files_checked,
        "trials": len(trials),
        "arms": sum(c["arms"] for c in conditions.values()),
        "comparisons": sum(c["comparisons"] for c in conditions.values()),
        "by_condition": {k: dict(v) for k, v in sorted(conditions.items())},
        "comparisons_by_approach": {k: dict(sorted(v.items())) for k, v in sorted(approaches.items())},
    }


def _print_text(report: Any, summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    for problem in report.errors + report.warnings:
        sys.stdout.write(problem.format() + "\n")
    console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    conditions = list(summary["by_condition"])
    table = Table(title=f"{summary['trials']} valid trials in {summary['files']} files", title_justify="left")
    for name in ("condition", "trials", "arms", "comparisons", "outcomes"):
        table.add_column(name, justify="left" if name == "condition" else "right")
    for condition, counts in summary["by_condition"].items():
        table.add_row(condition, *(str(counts.get(k, 0)) for k in ("trials", "arms", "comparisons", "outcomes")))
    console.print(table)
    if not conditions:
        console.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
        return
    console.print("comparisons by approach of arm 1 and condition:")
    by_approach = Table()
    by_approach.add_column("approach")
    for condition in conditions:
        by_approach.add_column(_short(condition), justify="right")
    for approach, counts in summary["comparisons_by_approach"].items():
        by_approach.add_row(approach, *(str(counts.get(c, "")) for c in conditions))
    console.print(by_approach)
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "clean" if not errors else f"{errors} error(s)"
    console.print(f"{verdict}, {warnings} warning(s)")


def _short(condition: str) -> str:
    return {"social-anxiety": "soc-anx", "suicidality": "suicid", "depression": "depr", "psychosis": "psychos"}.get(
        condition, condition)
