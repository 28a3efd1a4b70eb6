"""Session 4 review: results.json lines and results.csv rows of unchanged cells reused through the manifest
(report/build.py, report/tables.py). Whatever the previous report folder holds, the files must equal a
fresh write of the current results."""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from report.factory import make_results, with_edit

from metapsych.report import build, tables


@pytest.fixture()
def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reuse of results.json and results.csv does not involve the plots: skip drawing them."""
    monkeypatch.setattr(build, "_plot_jobs", lambda results, digests: [])


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return make_results(sizes=(3, 4), conditions={"depression": ["cbt", "ipt"], "ptsd": ["cbt"]})


def _assert_fresh(out: Path, results: dict[str, Any]) -> None:
    assert (out / "results.json").read_bytes() == tables.results_json(results)
    assert (out / "results.csv").read_bytes() == tables.results_csv(results)


def _step(rng: random.Random, doc: dict[str, Any], base: dict[str, Any], out: Path, other: Path, tag: str) -> None:
    """One random change between runs: of the cells, or of the files the previous run left."""
    cells = doc["cells"]
    op = rng.choice(["edit", "drop", "shuffle", "add", "message", "foreign", "no csv", "no manifest"])
    if op == "edit":
        cell = rng.choice([c for c in cells if c.get("main")] or [None])
        if cell is not None:
            doc.update(with_edit(doc, cell["id"], rng.choice([0.1, -0.2])))
    elif op == "drop" and len(cells) > 1:
        cells.pop(rng.randrange(len(cells)))
    elif op == "shuffle":
        rng.shuffle(cells)
    elif op == "add":
        cell = copy.deepcopy(rng.choice(base["cells"]))
        if all(c["id"] != cell["id"] for c in cells):
            cells.insert(rng.randrange(len(cells) + 1), cell)
    elif op == "message":  # a changed cell whose CSV rows hold line breaks and quotes
        cell = rng.choice(cells)
        cell["message"], cell["inputs_sha256"] = rng.choice(["a\nb", 'q"uote,\r\nx', "plain"]), tag
    elif op == "foreign" and out.is_dir():  # another report's consistent files
        for name in ("results.json", "results.csv", "manifest.json"):
            shutil.copy(other / name, out / name)
    elif op == "no csv" and (out / "results.csv").is_file():
        (out / "results.csv").unlink()
    elif op == "no manifest" and (out / "manifest.json").is_file():
        (out / "manifest.json").unlink()


@pytest.mark.usefixtures("no_plots")
@pytest.mark.parametrize("seed", range(12))
def test_sequences_of_runs_write_what_a_fresh_write_gives(seed: int, base: dict[str, Any], tmp_path: Path) -> None:
    rng = random.Random(seed)
    out, other = tmp_path / "reports", tmp_path / "other"
    foreign = with_edit(base, base["cells"][0]["id"], 0.3)
    foreign["cells"][0]["inputs_sha256"] = "foreign"  # with_edit's hash depends on the cell only
    build.write_report(foreign, other, changes=None, workers=1)
    doc = copy.deepcopy(base)
    for step in range(5):
        _step(rng, doc, base, out, other, f"{seed}-{step}")
        build.write_report(doc, out, changes=None, workers=1)
        _assert_fresh(out, doc)


@pytest.mark.usefixtures("no_plots")
def test_an_edited_manifest_does_not_corrupt_the_files(base: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "reports"
    build.write_report(base, out, changes=None, workers=1)
    manifest = json.loads((out / "manifest.json").read_text())
    for key in (build.RESULTS_ORDER, build.CSV_LAYOUT):  # two entries swapped; the files' hashes still match
        entries = manifest[key].split("\n")
        entries[0], entries[1] = entries[1], entries[0]
        manifest[key] = "\n".join(entries)
    (out / "manifest.json").write_text(json.dumps(manifest))
    new = with_edit(base, next(c["id"] for c in base["cells"][2:] if c.get("main")), 0.1)
    build.write_report(new, out, changes=None, workers=1)
    _assert_fresh(out, new)
