"""The safe YAML reader: line numbers for every value; anchors, tags, merge keys, several documents,
duplicate keys, oversized and deeply nested input are refused with a located problem."""

from __future__ import annotations

import pytest

from metapsych.data.yaml_io import MAX_BYTES, read_yaml_text
from metapsych.errors import DataError


def test_values_keep_their_lines() -> None:
    doc = read_yaml_text("a: 1\nb:\n  - {x: 2}\n  - y: 3\n    z: [1, 2]\n", "f.yaml")
    assert doc.value == {"a": 1, "b": [{"x": 2}, {"y": 3, "z": [1, 2]}]}
    assert doc.line(("b", 1, "z")) == 5
    assert doc.line(("b", 0, "x")) == 3
    assert doc.line(("b", 1, "missing")) == 4


@pytest.mark.parametrize("text, line, message", [
    ("a: &x 1\nb: *x\n", 1, "anchors and aliases"),
    ("a: 1\nb: !!python/object:os.system 1\n", 2, "tag"),
    ("a: 1\nb: !custom x\n", 2, "tag"),
    ("a: {<<: {b: 1}}\n", 1, "merge keys"),
    ("--- 1\n--- 2\n", 2, "more than one YAML document"),
    ("a: 1\na: 2\n", 2, "duplicate key"),
    ("a: [1\n", 2, "invalid YAML"),
    ("[" * 100 + "]" * 100, 1, "nesting"),
    ("a: 1\nb: !!bool 9\n", 2, "cannot read value"),
])
def test_refused_constructs(text: str, line: int, message: str) -> None:
    with pytest.raises(DataError) as info:
        read_yaml_text(text, "f.yaml")
    (problem,) = info.value.problems
    assert problem.line == line
    assert message in problem.problem


def test_oversized_text_is_refused() -> None:
    with pytest.raises(DataError, match="larger than"):
        read_yaml_text("a: " + "x" * MAX_BYTES, "f.yaml")


def test_numbers_are_read_as_yaml_1_2_reads_them() -> None:
    """PyYAML follows YAML 1.1, where 052 is octal 42, 1:30 is 90 (base 60) and 9_0 is 90: a trial file
    would silently carry another number. YAML 1.2 reads 052 as 52 and the other two as text, which a
    numeric field then refuses with its line."""
    text = ("a: 052\nb: 1:30\nc: 9_0\nd: 1_0.5\ne: 0b101\nf: 0x1A\ng: -3\nh: 1.5\ni: '052'\nj: .inf\n"
            "k: 1e3\nl: 1e-3\nm: 3.5e1\nn: -.5\no: 09\np: 0o17\nq: 1.2.3\nr: e5\ns: 5e\nt: -.Inf\n")
    assert read_yaml_text(text, "f.yaml").value == {
        "a": 52, "b": "1:30", "c": "9_0", "d": "1_0.5", "e": "0b101", "f": 26, "g": -3, "h": 1.5, "i": "052",
        "j": float("inf"), "k": 1000.0, "l": 0.001, "m": 35.0, "n": -0.5, "o": 9, "p": 15, "q": "1.2.3",
        "r": "e5", "s": "5e", "t": float("-inf")}
