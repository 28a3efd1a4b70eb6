"""Writing trial dicts as readable YAML files: block style for the structure, one flow mapping per arm,
time point and per-arm result, keys in the order the schema documents them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Safe dumper that never emits anchors/aliases (trial files refuse them)."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: D102 - PyYAML hook
        return True


def dump_trial(trial: dict[str, Any], comment: str | None = None) -> str:
    """YAML text of one trial, with an optional leading comment line."""
    text = yaml.dump(trial, Dumper=_Dumper, sort_keys=False, default_flow_style=None, allow_unicode=True,
                     width=110)
    return f"# {comment}\n{text}" if comment else text


def write_trials(trials: list[dict[str, Any]], folder: Path, comment: str | None = None) -> list[Path]:
    """Write each trial to ``folder/<id>.yaml``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for trial in trials:
        path = folder / f"{trial['id']}.yaml"
        path.write_text(dump_trial(trial, comment), encoding="utf-8")
        paths.append(path)
    return paths
