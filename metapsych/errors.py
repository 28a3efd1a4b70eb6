"""Errors that carry what a reviewer needs to fix the input, and the exit code they map to.

Exit codes (the fixed contract): 0 success, 1 an analysis could not be completed, 2 bad input or usage.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


def clip(text: str, limit: int = 60) -> str:
    """Text for a message, cut to ``limit`` characters (a rejected value may be thousands of digits long)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def not_a_folder(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot serve as a folder, worded for a message ("is a file, not a folder"); None when it
    is a folder or nothing is there."""
    if os.path.islink(path) and not os.path.exists(path):
        return f"is a link to {os.readlink(path)}, which does not exist or loops, not a folder"
    if os.path.exists(path) and not os.path.isdir(path):
        return "is a file, not a folder"
    return None


@dataclass(frozen=True)
class Problem:
    """One finding about the input, located as precisely as the input allows.

    ``line`` is the 1-based line in ``file`` (for CSV files: the physical line of the row, header = 1);
    ``field`` is the dotted path of the offending value (``arms[1].randomized``, ``sd_arm1``).
    """

    file: str
    line: int | None
    field: str
    problem: str
    expected: str = ""
    severity: Severity = "error"

    def format(self) -> str:
        """Render as ``FILE:LINE: field: problem (expected ...)``."""
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        text = f"{where}: {self.field}: {self.problem}"
        if self.expected:
            text += f" (expected {self.expected})"
        if self.severity == "warning":
            text = f"{text} [warning]"
        return text

    def to_dict(self) -> dict[str, object]:
        """Plain dict for JSON output."""
        return asdict(self)


class MetapsychError(Exception):
    """Base class: an expected failure that is reported without a traceback."""

    exit_code = 1


class InputError(MetapsychError):
    """Bad input or usage (exit code 2)."""

    exit_code = 2


class DataError(InputError):
    """One or more problems in data files; every problem is reported, not only the first."""

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(p.format() for p in self.problems))


class ConfigError(DataError):
    """Problems in an analysis configuration file (same format as data problems)."""


class AnalysisError(MetapsychError):
    """An analysis could not be completed (exit code 1), e.g. an estimator did not converge."""

    exit_code = 1
