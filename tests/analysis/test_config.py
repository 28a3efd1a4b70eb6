"""The analysis config: defaults, located errors with suggestions, and the shipped files agreeing."""

from __future__ import annotations

from pathlib import Path

import pytest

from metapsych.analysis.config import Config, load_config
from metapsych.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "metapsych" / "commands" / "templates" / "review" / "configs" / "default.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_loads_with_metapsytools_defaults() -> None:
    config = load_config(ROOT / "configs" / "default.yaml")
    assert (config.model.estimator, config.model.knha, config.dependency.method) == ("REML", True, "aggregate")
    assert (config.dependency.rho, config.effect.cer, config.min_studies, config.bias_min_studies) == (0.6, 0.2, 2, 10)
    assert {a.comparators for a in config.analyses} == {"each-control", "all-controls", "head-to-head"}


def test_init_template_ships_the_same_config() -> None:
    assert TEMPLATE.read_bytes() == (ROOT / "configs" / "default.yaml").read_bytes()


def test_minimal_config_gets_defaults_and_a_stable_hash(tmp_path: Path) -> None:
    text = "analyses:\n  - {name: main, comparators: all-controls}\n"
    a, b = load_config(write(tmp_path, text)), load_config(write(tmp_path, "# comment\n" + text))
    assert a.sha256() == b.sha256()
    assert a.analyses[0].time == ["post", "follow-up"]
    assert a.sha256() != Config.model_validate({"analyses": [{"name": "x", "comparators": "all-controls"}]}).sha256()


def test_unknown_key_is_located_and_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  estimater: REML\nanalyses:\n  - {name: main, comparators: all-controls}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (problem,) = err.value.problems
    assert (problem.line, problem.field) == (2, "model.estimater")
    assert "did you mean 'estimator'" in problem.problem


def test_every_problem_is_listed_with_its_line(tmp_path: Path) -> None:
    text = ("dependency: {method: aggregate, rho: 1.5}\n"
            "analyses:\n"
            "  - {name: main, comparators: h2h}\n"
            "  - {name: Bad Name, comparators: all-controls, time: [later]}\n")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    found = {(p.field, p.line) for p in err.value.problems}
    assert {("dependency.rho", 1), ("analyses[0].comparators", 3), ("analyses[1].name", 4),
            ("analyses[1].time[0]", 4)} <= found
    assert all(p.file == str(tmp_path / "config.yaml") for p in err.value.problems)


@pytest.mark.parametrize("text", ["", "- a list\n", "analyses: []\n", "analyses: [\n"])
def test_unusable_files_are_config_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text))


def test_duplicate_analysis_names_are_rejected(tmp_path: Path) -> None:
    text = "analyses:\n  - {name: a, comparators: all-controls}\n  - {name: a, comparators: each-control}\n"
    with pytest.raises(ConfigError, match="repeated: a"):
        load_config(write(tmp_path, text))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_a_minimum_number_of_trials_beyond_any_review_is_refused_and_shown_cut(tmp_path: Path) -> None:
    """min_studies: 10^400 excluded every cell and printed 401 digits in the methods paragraph."""
    text = f"min_studies: 1{'0' * 400}\nanalyses:\n  - {{name: main, comparators: all-controls}}\n"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    (problem,) = err.value.problems
    assert (problem.line, problem.field) == (1, "min_studies")
    assert len(problem.problem) < 80 and problem.problem.endswith("...")
    assert "1000000" in problem.expected
