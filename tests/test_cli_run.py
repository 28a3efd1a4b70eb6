"""`metapsych run` end to end on a small generated review: exit codes, byte-identical re-runs, a no-change
run that writes nothing, and one added trial that changes only its cells and is named in CHANGES.md."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.trialgen import trial_yaml, write_review
from metapsych.cli import app

N_TRIALS = 10


def run(root: Path, *extra: str) -> object:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return CliRunner().invoke(app, ["run", "--quiet", *extra])
    finally:
        os.chdir(cwd)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_review(tmp_path_factory.mktemp("review"), n_trials=N_TRIALS)
    out = run(root)
    assert out.exit_code == 0, out.output
    return root


def test_first_run_writes_the_report_with_the_numbers_of_metapsych_pool(built: Path, tmp_path: Path) -> None:
    results = json.loads((built / "reports" / "results.json").read_text())
    assert len(results["inputs"]["trials"]) == N_TRIALS
    assert (built / ".metapsych-cache" / "last-run.json").is_file()
    cell = max((c for c in results["cells"] if c["status"] == "ok"), key=lambda c: c["k"])
    csv = tmp_path / "cell.csv"
    csv.write_text("yi,vi\n" + "".join(f"{s['yi']!r},{s['vi']!r}\n" for s in cell["studies"]))
    pooled = json.loads(CliRunner().invoke(app, ["pool", str(csv), "--json", "--knha"]).stdout)
    for key in ("estimate", "se", "ci_lower", "ci_upper", "tau2", "I2", "Q", "pi_lower", "pi_upper"):
        assert abs(cell["main"][key] - pooled[key]) <= 1e-6 * max(1.0, abs(pooled[key])), key


def test_no_change_rerun_writes_nothing(built: Path) -> None:
    before = snapshot(built / "reports"), snapshot(built / ".metapsych-cache")
    out = run(built)
    assert out.exit_code == 0, out.output
    assert (snapshot(built / "reports"), snapshot(built / ".metapsych-cache")) == before


def test_forced_rerun_is_byte_identical(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    shutil.rmtree(copy / ".metapsych-cache")
    shutil.rmtree(copy / "reports")
    assert run(copy, "--force").exit_code == 0
    first = {k: v[0] for k, v in snapshot(built / "reports").items()}
    second = {k: v[0] for k, v in snapshot(copy / "reports").items()}
    assert first == second


def test_one_added_trial_changes_only_its_cells(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    new_id = f"trial-{N_TRIALS + 1:03d}"  # a therapy-vs-control trial: it enters existing cells
    (copy / "studies" / f"{new_id}.yaml").write_text(trial_yaml(N_TRIALS + 1), encoding="utf-8")
    out = run(copy)
    assert out.exit_code == 0, out.output
    old = {c["id"]: c for c in json.loads((built / "reports" / "results.json").read_text())["cells"]}
    new = {c["id"]: c for c in json.loads((copy / "reports" / "results.json").read_text())["cells"]}
    with_trial = {cid for cid, c in new.items() if any(s["trial"] == new_id for s in c["studies"])}
    changed = {cid for cid in new if old.get(cid) != new[cid]}
    assert with_trial & set(old) and changed == with_trial
    changes = (copy / "reports" / "CHANGES.md").read_text().replace("\\", "")  # Markdown escapes
    assert new_id in changes and all(cid in changes for cid in with_trial & set(old))


def test_changes_md_is_the_same_whether_the_previous_results_come_from_the_cache_or_the_file(
        built: Path, tmp_path: Path) -> None:
    """The run keeps what the next diff reads of the report in the cache; diffing against it gives the
    CHANGES.md that diffing against the previous results.json itself gives."""
    texts = []
    for keep in (True, False):
        copy = tmp_path / f"copy-{keep}"
        shutil.copytree(built, copy)
        assert (copy / ".metapsych-cache" / "last-results.json").is_file()
        if not keep:
            (copy / ".metapsych-cache" / "last-results.json").unlink()
        (copy / "studies" / "trial-900.yaml").write_text(trial_yaml(900), encoding="utf-8")
        assert run(copy).exit_code == 0
        texts.append((copy / "reports" / "CHANGES.md").read_text())
    assert "trial-900" in texts[0] and texts[0] == texts[1]


def test_incremental_run_after_adding_a_trial_equals_a_cold_run(built: Path, tmp_path: Path) -> None:
    """Cached cells, plots and pages reused by an incremental run give exactly the bytes a cold run gives
    (CHANGES.md aside: it describes the change since the previous report, which a cold run does not have)."""
    incremental, cold = tmp_path / "incremental", tmp_path / "cold"
    shutil.copytree(built, incremental)
    for n in (N_TRIALS + 1, N_TRIALS + 2):  # one trial in existing cells, one more to vary the cells touched
        (incremental / "studies" / f"trial-{n:03d}.yaml").write_text(trial_yaml(n), encoding="utf-8")
        assert run(incremental).exit_code == 0
    shutil.copytree(incremental / "studies", cold / "studies")
    shutil.copytree(incremental / "configs", cold / "configs")
    assert run(cold).exit_code == 0
    first = {k: v[0] for k, v in snapshot(incremental / "reports").items() if k != "CHANGES.md"}
    second = {k: v[0] for k, v in snapshot(cold / "reports").items() if k != "CHANGES.md"}
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []


def test_data_and_config_errors_exit_2_listing_every_problem(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(built / "studies", copy / "studies")
    shutil.copytree(built / "configs", copy / "configs")
    config = copy / "configs" / "default.yaml"
    config.write_text(config.read_text().replace("min_studies: 2", "min_studys: 2").replace("rho: 0.6", "rho: 2"))
    out = run(copy)
    assert out.exit_code == 2
    assert "default.yaml:3: min_studys: unknown key; did you mean 'min_studies'?" in out.stderr
    assert "dependency.rho" in out.stderr and "Traceback" not in out.output
    shutil.copy(built / "configs" / "default.yaml", config)
    bad = copy / "studies" / "trial-000.yaml"
    bad.write_text(bad.read_text().replace("condition: depression", "condition: depresion"))
    out = run(copy)
    assert out.exit_code == 2 and "trial-000.yaml" in out.stderr and "condition" in out.stderr
    assert not (copy / "reports").exists()
    shutil.rmtree(copy / "studies")
    assert run(copy).exit_code == 2


def test_progress_is_plain_lines_without_a_terminal_and_silent_when_quiet(capsys: pytest.CaptureFixture) -> None:
    from metapsych.commands.progress import progress_reporter

    for quiet in (True, False):
        with progress_reporter(quiet) as progress:
            for done in range(0, 21):
                progress("cells", done, 20)
    err = capsys.readouterr().err
    assert err.splitlines() == [f"cells: {n}/20" for n in range(0, 21, 2)]


def test_no_change_run_says_so(built: Path) -> None:
    cwd = os.getcwd()
    os.chdir(built)
    try:
        out = CliRunner().invoke(app, ["run"])
    finally:
        os.chdir(cwd)
    assert out.exit_code == 0 and "up to date" in out.stderr


def test_a_damaged_previous_results_json_starts_changes_afresh(built: Path, tmp_path: Path) -> None:
    root = tmp_path / "review"
    shutil.copytree(built, root)
    (root / "reports" / "results.json").write_text("[1]")
    out = run(root, "--force")
    assert out.exit_code == 0, out.output
    assert "first report" in (root / "reports" / "CHANGES.md").read_text()
    assert json.loads((root / "reports" / "results.json").read_text())["cells"]


def test_a_trial_edited_during_a_run_is_analysed_by_the_next_run(built: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The run records the inputs as it read them before analysing: an edit made meanwhile is not
    mistaken for what the report shows."""
    from metapsych.commands import run as command

    root = tmp_path / "review"
    shutil.copytree(built, root)
    trial = sorted((root / "studies").rglob("*.yaml"))[0]
    analyse = command._analyse

    def edit_while_analysing(*args: object, **kwargs: object) -> dict:
        results = analyse(*args, **kwargs)
        trial.write_text(trial.read_text() + "\n# edited during the run\n")
        return results

    monkeypatch.setattr(command, "_analyse", edit_while_analysing)
    assert run(root, "--force").exit_code == 0
    calls: list[int] = []
    monkeypatch.setattr(command, "_analyse", lambda *a, **k: calls.append(1) or analyse(*a, **k))
    assert run(root).exit_code == 0
    assert calls == [1]
    assert run(root).exit_code == 0
    assert calls == [1]  # and then it is up to date
