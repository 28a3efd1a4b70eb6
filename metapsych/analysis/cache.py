"""Content-addressed cache (``.metapsych-cache/`` beside studies/): file hashes, effect tables, cell results.

Entries are keyed by a sha256 of everything they depend on, so a stale entry is never used, only left
unused; ``prune`` drops the cell entries a run did not use. Writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from metapsych import __version__

TRIAL_SUFFIXES = (".yaml", ".yml")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(value: object) -> str:
    """Hex sha256 of a JSON-serialisable value (sorted keys, so dict order does not matter)."""
    return sha256_bytes(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


def sha256_columns(columns: Iterable[tuple[str, Any]]) -> str:
    """Hex sha256 of named columns (numpy arrays), in order: numbers as their bytes, other values by ``repr``
    (exact for floats, and it tells 1 from 1.0 and '1'); each column's name, dtype and length are included.
    Cheap enough to key a cache entry by the rows it is computed from, without building anything from them."""
    digest = hashlib.sha256()
    for name, values in columns:
        digest.update(f"{name}\0{values.dtype.str}\0{len(values)}\0".encode())
        digest.update(values.tobytes() if values.dtype.kind in "fiub" else repr(values.tolist()).encode())
    return digest.hexdigest()


ANALYSIS_PACKAGES = ("data", "effects", "stats", "analysis")


@functools.lru_cache(maxsize=2)
def code_version(packages: tuple[str, ...] = ANALYSIS_PACKAGES) -> str:
    """The metapsych version plus a hash of the source files of ``packages`` (sub-packages of metapsych;
    ``()`` = all of it), so that a code change invalidates what was cached with the old code. Cached analysis
    results depend on the analysis packages only; the report (and so the no-change check) on all of it."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if packages and rel.parts[0] not in packages:
            continue
        if path.is_file() and path.suffix in (".py", ".yaml", ".j2") and "__pycache__" not in rel.parts:
            digest.update(rel.as_posix().encode() + b"\0" + path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


def trial_files(studies_dir: Path) -> list[Path]:
    """The trial files of a studies folder, as the data layer finds them (recursive, no hidden files), sorted."""
    if studies_dir.is_file():
        return [studies_dir]
    return sorted(p for p in studies_dir.rglob("*") if p.suffix.lower() in TRIAL_SUFFIXES and p.is_file()
                  and not p.name.startswith("."))


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Cache:
    """A folder of cached values; ``Cache(None)`` stores nothing, ``read=False`` recomputes but still stores."""

    def __init__(self, root: Path | None, read: bool = True) -> None:
        self.root = root
        self.read = read
        self.used: set[str] = set()

    def _path(self, kind: str, key: str, suffix: str) -> Path | None:
        return None if self.root is None else self.root / kind / f"{key}{suffix}"

    def _readable(self, kind: str, key: str, suffix: str) -> Path | None:
        path = self._path(kind, key, suffix)
        return path if self.read and path is not None and path.is_file() else None

    def get_json(self, kind: str, key: str) -> object | None:
        """A cached JSON value, or None when absent or unreadable."""
        path = self._readable(kind, key, ".json")
        if path is None:
            return None
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        self.used.add(f"{kind}/{key}.json")
        return value

    def put_json(self, kind: str, key: str, value: object) -> None:
        """Store a JSON value (no-op for a disabled cache)."""
        path = self._path(kind, key, ".json")
        if path is not None:
            atomic_write(path, json.dumps(value, sort_keys=True).encode())
            self.used.add(f"{kind}/{key}.json")

    def get_pickle(self, kind: str, key: str) -> object | None:
        """A cached Python object (our own pickles only), or None."""
        path = self._readable(kind, key, ".pickle")
        if path is None:
            return None
        try:
            with path.open("rb") as handle:
                value = pickle.load(handle)  # noqa: S301 - written by this cache, keyed by content hash
        except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError):
            return None
        self.used.add(f"{kind}/{key}.pickle")
        return value

    def put_pickle(self, kind: str, key: str, value: object) -> None:
        """Store a Python object (no-op for a disabled cache)."""
        path = self._path(kind, key, ".pickle")
        if path is not None:
            atomic_write(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            self.used.add(f"{kind}/{key}.pickle")

    def prune(self, kinds: tuple[str, ...]) -> None:
        """Delete entries of ``kinds`` that this run neither read nor wrote."""
        if self.root is None:
            return
        for kind in kinds:
            folder = self.root / kind
            if folder.is_dir():
                for path in folder.iterdir():
                    if f"{kind}/{path.name}" not in self.used:
                        path.unlink(missing_ok=True)
