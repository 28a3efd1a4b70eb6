"""Fixtures for the report tests: synthetic results documents that follow docs/architecture.md."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from factory import make_results  # noqa: E402


@pytest.fixture()
def results() -> dict[str, Any]:
    """The full document: two conditions, cells with 3, 12 and 120 studies, network and moderators."""
    return make_results()


@pytest.fixture()
def small_results() -> dict[str, Any]:
    """A quick-to-render document: depression (two approaches) and ptsd, cells with 3, 12 and 4 studies."""
    return make_results(sizes=(3, 12, 4), conditions={"depression": ["cbt", "ipt"], "ptsd": ["cbt"]})


@pytest.fixture()
def tiny_results() -> dict[str, Any]:
    """The smallest useful document: one condition, one approach, cells with 3 and 12 studies."""
    return make_results(sizes=(3, 12), conditions={"depression": ["cbt", "ipt"]})
