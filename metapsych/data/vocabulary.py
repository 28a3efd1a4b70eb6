"""The controlled vocabulary: approaches (therapies, controls, medication), conditions, delivery formats,
ratings, risk-of-bias judgements and instruments, each with aliases, so that trial files and imported
databases speak one language and typos get a "did you mean".

The built-in vocabulary is ``metapsych/data/vocabulary.yaml``; a user file of the same shape (by default
``configs/vocabulary.yaml``) adds codes and aliases or overrides an instrument's direction.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metapsych.errors import ConfigError, Problem

BUILTIN = Path(__file__).with_name("vocabulary.yaml")

#: vocabulary kind -> section of the YAML file
SECTIONS = {
    "approach": "approaches",
    "condition": "conditions",
    "format": "formats",
    "rating": "ratings",
    "risk_of_bias": "risk_of_bias",
    "instrument": "instruments",
}
ARM_KINDS = ("therapy", "control", "pharmacotherapy", "combined")
_CODE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def normalize(value: str) -> str:
    """Matching key of a code or alias: lower case, spaces and underscores as '-', runs collapsed."""
    text = re.sub(r"[\s_\-]+", "-", str(value).strip().lower())
    return text.strip("-")


class UnknownCode(ValueError):
    """A value that is not a code or alias of the vocabulary; carries the closest suggestion."""

    def __init__(self, kind: str, value: str, suggestion: str | None, choices: list[str]) -> None:
        self.kind, self.value, self.suggestion, self.choices = kind, value, suggestion, choices
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(f"unknown {kind.replace('_', ' ')} {value!r}{hint}")

    @property
    def expected(self) -> str:
        """Short 'expected ...' text listing the valid codes."""
        shown = ", ".join(self.choices[:12]) + (", ..." if len(self.choices) > 12 else "")
        return f"one of {shown}"


@dataclass
class Vocabulary:
    """Codes per kind with their attributes and an alias index (normalised alias -> code)."""

    codes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)

    def resolve(self, kind: str, value: str, condition: str | None = None) -> str:
        """Canonical code of ``value`` (a code or alias), or raise :class:`UnknownCode`.

        ``condition`` enables condition-specific aliases (``"ptsd:pe"``), which take precedence over the
        general aliases (but not over a canonical code written exactly).
        """
        code = self.lookup(kind, value, condition)
        if code is None:
            raise UnknownCode(kind, str(value), self.suggest(kind, value), sorted(self.codes.get(kind, {})))
        return code

    def lookup(self, kind: str, value: str, condition: str | None = None) -> str | None:
        """Like :meth:`resolve` but returns None for unknown values."""
        self._check_kind(kind)
        if value in self.codes[kind]:
            return str(value)
        key = normalize(value)
        index = self.aliases[kind]
        if condition:
            scoped = index.get(f"{normalize(condition)}:{key}")
            if scoped:
                return scoped
        return index.get(key)

    def suggest(self, kind: str, value: str) -> str | None:
        """The closest code or alias to an unknown value (difflib), or None when nothing is close."""
        self._check_kind(kind)
        candidates = [c for c in self.aliases[kind] if ":" not in c]
        match = difflib.get_close_matches(normalize(value), candidates, n=1, cutoff=0.6)
        return self.aliases[kind][match[0]] if match else None

    def arm_kind(self, approach: str) -> str:
        """Kind of an approach code: therapy, control, pharmacotherapy or combined."""
        return str(self.codes["approach"][self.resolve("approach", approach)]["kind"])

    def instrument_lower_is_better(self, name: str) -> bool | None:
        """Whether lower scores favour the therapy on this instrument; None when the instrument is unknown."""
        code = self.lookup("instrument", name)
        if code is None:
            return None
        value = self.codes["instrument"][code].get("lower_is_better")
        return None if value is None else bool(value)

    def choices(self, kind: str) -> list[str]:
        """Sorted canonical codes of a kind."""
        self._check_kind(kind)
        return sorted(self.codes[kind])

    def _check_kind(self, kind: str) -> None:
        if kind not in SECTIONS:
            raise KeyError(f"unknown vocabulary kind {kind!r}; expected one of {', '.join(SECTIONS)}")

    def merge(self, data: dict[str, Any], file: str, lines: Any = None) -> list[Problem]:
        """Add the codes and aliases of a vocabulary mapping; returns the problems found in it."""
        problems: list[Problem] = []
        if not isinstance(data, dict):
            return [Problem(file, 1, "(file)", "not a mapping", f"sections {', '.join(SECTIONS.values())}")]
        by_section = {section: kind for kind, section in SECTIONS.items()}
        for section, entries in data.items():
            line = lines.line((section,)) if lines is not None else None
            if section not in by_section:
                close = difflib.get_close_matches(section, by_section, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(Problem(file, line, section, f"unknown section{hint}", ", ".join(by_section)))
                continue
            if not isinstance(entries, dict):
                problems.append(Problem(file, line, section, "not a mapping", "code: {aliases: [...]}"))
                continue
            for code, attrs in entries.items():
                where = lines.line((section, code)) if lines is not None else None
                problems += self._add(by_section[section], str(code), attrs or {}, file, where, section)
        return problems

    def _add(self, kind: str, code: str, attrs: Any, file: str, line: int | None, section: str) -> list[Problem]:
        field_name = f"{section}.{code}"
        if not _CODE.match(code):
            return [Problem(file, line, field_name, "code is not a lower-case slug", "[a-z0-9][a-z0-9-]*")]
        if not isinstance(attrs, dict):
            return [Problem(file, line, field_name, "not a mapping", "{aliases: [...], ...}")]
        if kind == "approach" and attrs.get("kind", self.codes["approach"].get(code, {}).get("kind")) not in ARM_KINDS:
            return [Problem(file, line, f"{field_name}.kind", "missing or unknown arm kind", " or ".join(ARM_KINDS))]
        aliases = attrs.get("aliases") or []
        if not isinstance(aliases, list):
            return [Problem(file, line, f"{field_name}.aliases", "not a list", "a list of alternative names")]
        if "lower_is_better" in attrs and not isinstance(attrs["lower_is_better"], bool):
            return [Problem(file, line, f"{field_name}.lower_is_better", f"got {attrs['lower_is_better']!r}",
                            "true or false")]
        index = self.aliases[kind]
        keys = [_alias_key(alias) for alias in aliases]
        taken = [(key, index[key]) for key in keys if index.get(key, code) != code]
        if taken:  # re-pointing an alias silently moves every trial that uses it to another code (a new code
            # may shadow an alias: codes are matched first)
            key, other = taken[0]
            return [Problem(file, line, f"{field_name}.aliases", f"{key!r} already names {other!r}",
                            "names that no other code uses")]
        entry = self.codes[kind].setdefault(code, {})
        entry.update({k: v for k, v in attrs.items() if k != "aliases"})
        index.update(dict.fromkeys([normalize(code), *keys], code))
        return []


def _alias_key(alias: object) -> str:
    """Index key of an alias; ``condition:name`` aliases apply within one condition only."""
    scope, _, name = str(alias).rpartition(":")
    return f"{normalize(scope)}:{normalize(name)}" if scope else normalize(name)


@functools.lru_cache(maxsize=1)
def _builtin_document() -> Any:
    """The parsed built-in vocabulary file (read once per process)."""
    from metapsych.data.yaml_io import read_yaml

    return read_yaml(BUILTIN)


def load_vocabulary(extra: Path | None = None) -> Vocabulary:
    """The built-in vocabulary, extended by ``extra`` (a user vocabulary YAML) when given.

    Raises ConfigError listing every problem in the user file.
    """
    from metapsych.data.yaml_io import read_yaml

    vocabulary = Vocabulary({kind: {} for kind in SECTIONS}, {kind: {} for kind in SECTIONS})
    builtin = _builtin_document()
    problems = vocabulary.merge(copy.deepcopy(builtin.value), str(BUILTIN), builtin)
    if extra is not None:
        if not extra.exists():
            raise ConfigError(Problem(str(extra), None, "(file)", "vocabulary file not found", "an existing file"))
        user = read_yaml(extra)
        if user.value is not None:
            problems += vocabulary.merge(user.value, str(extra), user)
    if problems:
        raise ConfigError(problems)
    return vocabulary
