"""Small, valid, deterministic trial files for the engine tests (written through YAML, read by the data layer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CONFIG = """\
model: {estimator: REML, knha: true, prediction_interval: true, level: 0.95}
dependency: {method: aggregate, rho: 0.6}
min_studies: 2
bias_min_studies: 10
analyses:
  - {name: vs-control, comparators: each-control, time: [post, follow-up], subgroups: [format, risk_of_bias]}
  - {name: vs-all-controls, comparators: all-controls, time: [post], subgroups: [control]}
  - {name: head-to-head, comparators: head-to-head, time: [post]}
moderators: {variables: [sessions, year, rob, percent_women], time: post, min_studies: 5}
network: {enabled: true, time: post, reference: [care-as-usual, waitlist]}
"""

APPROACHES = ("cbt", "pst", "ipt")
CONTROLS = ("waitlist", "care-as-usual")
FORMATS = ("individual", "group")
ROB = ("low", "some", "high")


def trial_yaml(i: int, seed: int = 0) -> str:
    """Trial number ``i``: a therapy against a control (every 5th: two therapies), post and sometimes follow-up."""
    rng = np.random.default_rng(seed * 1000 + i)
    approach = APPROACHES[i % 3]
    other = CONTROLS[(i // 3) % 2] if i % 5 else APPROACHES[(i + 1) % 3]
    n1, n2 = (int(x) for x in rng.integers(20, 80, size=2))
    m2 = 20.0
    m1 = m2 - float(rng.normal(4.0 if i % 5 else 1.0, 3.0))
    lines = [
        f"id: trial-{i:03d}",
        f"study: Author{i}, {2000 + i % 20}",
        f'citation: "Author{i} (2000). A trial. J Test {i}:1-9."',
        f"year: {2000 + i % 20}",
        "condition: depression",
        f"risk_of_bias: {{tool: rob2, overall: {ROB[i % 3]}}}",
        f"moderators: {{percent_women: {40 + (i * 7) % 50}}}",
        "arms:",
        f"  - {{id: a, approach: {approach}, format: {FORMATS[i % 2]}, sessions: {6 + i % 10}, randomized: {n1 + 5}}}",
        f"  - {{id: b, approach: {other}, randomized: {n2 + 5}}}",
        "outcomes:",
        "  - instrument: bdi-ii",
        "    timepoint: {label: post, weeks: 12}",
        "    results:",
        f"      a: {{mean: {m1:.2f}, sd: {rng.uniform(6, 10):.2f}, n: {n1}}}",
        f"      b: {{mean: {m2:.2f}, sd: {rng.uniform(6, 10):.2f}, n: {n2}}}",
    ]
    if i % 2 == 0:
        lines += [
            "  - instrument: hdrs-17",
            "    timepoint: {label: post, weeks: 12}",
            "    results:",
            f"      a: {{mean: {m1 / 2:.2f}, sd: {rng.uniform(3, 6):.2f}, n: {n1}}}",
            f"      b: {{mean: {m2 / 2:.2f}, sd: {rng.uniform(3, 6):.2f}, n: {n2}}}",
        ]
    if i % 3 != 2:
        lines += [
            "  - instrument: bdi-ii",
            "    timepoint: {label: follow-up, weeks: 26}",
            f"    precomputed: {{arms: [a, b], g: {rng.normal(0.3, 0.3):.3f}, se: {rng.uniform(0.15, 0.3):.3f}}}",
        ]
    if other in APPROACHES:
        lines.append("comparisons: [[a, b]]")
    return "\n".join(lines) + "\n"


def write_review(root: Path, n_trials: int = 30) -> Path:
    """A review repository in ``root``: studies/ with ``n_trials`` trials and configs/default.yaml."""
    (root / "studies").mkdir(parents=True)
    (root / "configs").mkdir()
    for i in range(n_trials):
        (root / "studies" / f"trial-{i:03d}.yaml").write_text(trial_yaml(i), encoding="utf-8")
    (root / "configs" / "default.yaml").write_text(CONFIG, encoding="utf-8")
    return root
