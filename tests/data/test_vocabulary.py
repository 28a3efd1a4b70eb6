"""The controlled vocabulary: aliases, condition-scoped aliases, did-you-mean, directions, user extensions."""

from __future__ import annotations

from pathlib import Path

import pytest

from metapsych.data.vocabulary import UnknownCode, load_vocabulary, normalize
from metapsych.errors import ConfigError


@pytest.fixture(scope="module")
def vocab():  # type: ignore[no-untyped-def]
    return load_vocabulary()


@pytest.mark.parametrize("value, code", [
    ("CBT", "cbt"), ("bat", "ba"), ("3rd", "3rd-wave"), ("other psy", "other"), ("wl", "waitlist"),
    ("WLC", "waitlist"), ("Waiting list", "waitlist"), ("TAU/NT", "care-as-usual"), ("cau", "care-as-usual"),
    ("other ctr", "other-control"), ("pill placebo", "pill-placebo"), ("pha", "pharmacotherapy"),
    ("combined", "combined"), ("Problem solving", "pst"), ("Psychodynamic", "dyn"),
])
def test_aliases_resolve_to_codes(vocab, value: str, code: str) -> None:  # type: ignore[no-untyped-def]
    assert vocab.resolve("approach", value) == code


def test_condition_scoped_aliases_win_but_not_over_exact_codes(vocab) -> None:  # type: ignore[no-untyped-def]
    assert vocab.resolve("approach", "PE", "ptsd") == "cbt"
    assert vocab.lookup("approach", "PE", "gad") is None
    assert vocab.resolve("approach", "Other", "ptsd") == "other-control"
    assert vocab.resolve("approach", "other", "ptsd") == "other"
    assert vocab.resolve("approach", "CR", "psychosis") == "other"
    assert vocab.resolve("approach", "CR", "gad") == "cbt"


def test_unknown_code_suggests_the_closest(vocab) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownCode) as info:
        vocab.resolve("approach", "waitlst")
    assert info.value.suggestion == "waitlist"
    assert "did you mean 'waitlist'?" in str(info.value)
    assert vocab.suggest("condition", "depresion") == "depression"
    assert vocab.suggest("approach", "zzzzzz") is None


def test_arm_kinds_and_instrument_directions(vocab) -> None:  # type: ignore[no-untyped-def]
    assert [vocab.arm_kind(a) for a in ("cbt", "wl", "pha", "combined")] == \
           ["therapy", "control", "pharmacotherapy", "combined"]
    assert vocab.instrument_lower_is_better("BDI-2") is True
    assert vocab.instrument_lower_is_better("response") is False
    assert vocab.instrument_lower_is_better("PANSS_total") is True
    assert vocab.instrument_lower_is_better("no such scale") is None


def test_normalize_ignores_case_spaces_and_underscores() -> None:
    assert normalize("  Other_Psy ") == normalize("other-psy") == "other-psy"


def test_user_file_adds_codes_and_directions(tmp_path: Path) -> None:
    extra = tmp_path / "vocabulary.yaml"
    extra.write_text("approaches:\n  emdr: {kind: therapy, aliases: [EMDR therapy]}\n  cbt: {aliases: [cbt-i]}\n"
                     "instruments:\n  whoqol: {lower_is_better: false}\n")
    vocab = load_vocabulary(extra)
    assert vocab.resolve("approach", "EMDR therapy") == "emdr"
    assert vocab.resolve("approach", "CBT-I") == "cbt"
    assert vocab.arm_kind("emdr") == "therapy"
    assert vocab.instrument_lower_is_better("WHOQOL") is False


def test_bad_user_file_lists_every_problem(tmp_path: Path) -> None:
    extra = tmp_path / "vocabulary.yaml"
    extra.write_text("approaches:\n  Bad Code: {kind: therapy}\n  new: {kind: drug}\nconditions: [x]\n")
    with pytest.raises(ConfigError) as info:
        load_vocabulary(extra)
    fields = [p.field for p in info.value.problems]
    assert fields == ["approaches.Bad Code", "approaches.new.kind", "conditions"]
    assert [p.line for p in info.value.problems] == [2, 3, 4]


@pytest.mark.parametrize("text, field, problem", [
    ("approaches:\n  emdr: {kind: therapy, aliases: [cbt]}\n", "approaches.emdr.aliases", "'cbt' already names 'cbt'"),
    ("approaches:\n  emdr: {kind: therapy, aliases: [wl]}\n", "approaches.emdr.aliases", "'wl' already names 'waitlist'"),
    ("instruments:\n  foo: {lower_is_better: maybe}\n", "instruments.foo.lower_is_better", "got 'maybe'"),
])
def test_user_file_cannot_re_point_names_or_give_non_boolean_directions(tmp_path: Path, text: str, field: str,
                                                                        problem: str) -> None:
    extra = tmp_path / "vocabulary.yaml"
    extra.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_vocabulary(extra)
    assert [(p.field, p.problem) for p in info.value.problems] == [(field, problem)]
