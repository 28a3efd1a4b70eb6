"""Safe YAML reading that keeps the line number of every value, for error messages that point at the input.

Files are composed into nodes with PyYAML's safe machinery (the C loader when available) and converted to
plain Python values plus a map from each value's path (a tuple of keys and list indices) to its 1-based line.
Anchors and aliases, explicit tags other than YAML's standard scalar/collection tags, several documents in
one file, files over :data:`MAX_BYTES` and nesting deeper than :data:`MAX_DEPTH` are refused: trial files
are plain data, and these features only make reviews harder (or, for aliases, enable "billion laughs").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from metapsych.data.files import read_input
from metapsych.errors import DataError, Problem, clip

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 40

Path_ = tuple[str | int, ...]

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: its plain value and the line of every value, keyed by path."""

    file: str
    value: Any
    lines: dict[Path_, int]
    text: str

    def line(self, path: Path_) -> int | None:
        """Line of the value at ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def format_path(path: Path_) -> str:
    """Dotted field name for a path: ``arms[1].randomized``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(file)"


def read_yaml_text(text: str, file: str) -> YamlDocument:
    """Parse YAML text into a :class:`YamlDocument`, raising DataError with a located Problem."""
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise DataError(Problem(file, None, "(file)", f"file is larger than {MAX_BYTES // 1024} KiB",
                                "a YAML file under 1 MiB"))
    if "&" in text or "*" in text:
        _refuse_anchors(text, file)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc).splitlines()[0]
        if "expected a single document" in str(exc):
            problem = "more than one YAML document in the file"
        raise DataError(Problem(file, line, "(file)", f"invalid YAML: {problem}", "one YAML mapping")) from None
    except yaml.YAMLError as exc:
        raise DataError(Problem(file, None, "(file)", f"invalid YAML: {exc}", "one YAML mapping")) from None
    lines: dict[Path_, int] = {}
    if node is None:
        return YamlDocument(file, None, lines, text)
    value = _convert(node, (), lines, file, 0)
    return YamlDocument(file, value, lines, text)


def read_yaml(path: Path) -> YamlDocument:
    """Read and parse a YAML file (UTF-8, optional BOM)."""
    file = str(path)
    raw = read_input(path, "a readable YAML file under 1 MiB", MAX_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(Problem(file, line, "(file)", "not valid UTF-8 text", "a UTF-8 YAML file")) from None
    if "\x00" in text:
        raise DataError(Problem(file, text[: text.index("\x00")].count("\n") + 1, "(file)",
                                "binary content (NUL byte)", "a UTF-8 YAML file"))
    return read_yaml_text(text, file)


def _refuse_anchors(text: str, file: str) -> None:
    """Scan the event stream (only when the text could hold one) for anchors and aliases."""
    try:
        for event in yaml.parse(text, Loader=_Loader):
            anchor = getattr(event, "anchor", None)
            if isinstance(event, yaml.AliasEvent) or anchor:
                raise DataError(Problem(file, event.start_mark.line + 1, "(file)",
                                        f"YAML anchors and aliases are not allowed (&{anchor} / *{anchor})",
                                        "every value written out in full"))
    except yaml.YAMLError:
        return  # the composer reports syntax errors with their location


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str, depth: int) -> Any:
    line = node.start_mark.line + 1
    lines[path] = line
    if depth > MAX_DEPTH:
        raise DataError(Problem(file, line, format_path(path), f"nesting deeper than {MAX_DEPTH} levels",
                                "a flat trial file"))
    if node.tag not in _STANDARD_TAGS:
        raise DataError(Problem(file, line, format_path(path), f"YAML tag {node.tag!r} is not allowed",
                                "plain values without tags"))
    if isinstance(node, yaml.MappingNode):
        return _convert_mapping(node, path, lines, file, depth)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, file, depth + 1) for i, item in enumerate(node.value)]
    return _construct_scalar(node, path, file)


def _convert_mapping(node: yaml.MappingNode, path: Path_, lines: dict[Path_, int], file: str, depth: int) -> dict:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if key_node.tag.endswith(":merge"):
            raise DataError(Problem(file, key_line, format_path(path), "YAML merge keys (<<) are not allowed",
                                    "every value written out in full"))
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _STANDARD_TAGS:
            raise DataError(Problem(file, key_line, format_path(path), "mapping keys must be plain text",
                                    "key: value"))
        key = str(key_node.value)
        if key in result:
            raise DataError(Problem(file, key_line, format_path((*path, key)), "duplicate key",
                                    "each key once per mapping"))
        result[key] = _convert(value_node, (*path, key), lines, file, depth + 1)
        lines[(*path, key)] = key_line
    return result


def _construct_scalar(node: yaml.ScalarNode, path: Path_, file: str) -> Any:
    if not node.style and node.tag in _RESOLVED:  # plain (None, or "" from the C composer), not quoted
        number = _yaml12_number(node.value)
        if number is not None:
            return number
        if node.tag != _STR:  # a YAML 1.1 number form (1:30, 9_0, 0b101): text in YAML 1.2
            return node.value
    constructor = yaml.SafeLoader.yaml_constructors.get(node.tag)
    try:
        return constructor(_SCALAR_LOADER, node) if constructor else node.value
    except (ValueError, KeyError, yaml.YAMLError):  # KeyError: !!bool on a non-boolean
        raise DataError(Problem(file, node.start_mark.line + 1, format_path(path),
                                f"cannot read value {clip(node.value)!r}", "a plain number or text")) from None


_STR = "tag:yaml.org,2002:str"
_RESOLVED = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", _STR)
_INT = re.compile(r"[-+]?[0-9]+")
_OCTAL = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF_NAN = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")


def _yaml12_number(text: str) -> int | float | None:
    """The number a plain scalar is in YAML 1.2's core schema; None for text.

    PyYAML follows YAML 1.1, where ``052`` is octal 42, ``1:30`` (base 60) and ``9_0`` are 90, and ``1e3``
    or ``-.5`` are text; a trial file would silently carry another number, or refuse a good one.
    """
    if _INT.fullmatch(text):
        return int(text, 10)
    if _OCTAL.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF_NAN.fullmatch(text):
        return float(text.replace(".", ""))
    return None


class _ScalarLoader(yaml.SafeLoader):
    """A loader instance used only for its scalar constructors (no stream)."""

    def __init__(self) -> None:  # noqa: D107 - no stream: scalar construction only
        yaml.constructor.SafeConstructor.__init__(self)


_SCALAR_LOADER = _ScalarLoader()
