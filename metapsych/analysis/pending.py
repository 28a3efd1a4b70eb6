"""Per-condition payloads (moderator models, networks) that are cached, and the ones still to compute.

Planning and computing are separate so that ``analysis.run`` can hand the missing payloads to the worker
processes that compute the cells' diagnostics, instead of computing them one after another in the main
process while those workers wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metapsych.analysis.cache import Cache


@dataclass(frozen=True)
class Pending:
    """A condition's payload still to compute: ``func(*args)``, cached under ``kind``/``key`` when done.
    ``cost`` (rows involved) orders the work, the costliest first."""

    condition: str
    kind: str
    key: str
    func: Callable[..., dict]
    args: tuple[Any, ...]
    cost: float


@dataclass(frozen=True)
class Planned:
    """The payloads found in the cache and those to compute, over conditions in sorted order."""

    conditions: list[str]
    cached: dict[str, dict]
    pending: list[Pending]

    def compute_here(self, cache: Cache) -> dict[str, dict]:
        """Compute the pending payloads in this process and return every condition's payload."""
        return self.finish([item.func(*item.args) for item in self.pending], cache)

    def finish(self, payloads: list[dict], cache: Cache) -> dict[str, dict]:
        """Cache the computed ``payloads`` (one per pending item, in order) and return every condition's."""
        computed = {}
        for item, payload in zip(self.pending, payloads, strict=True):
            cache.put_json(item.kind, item.key, payload)
            computed[item.condition] = payload
        return {condition: self.cached.get(condition, computed.get(condition)) for condition in self.conditions}
