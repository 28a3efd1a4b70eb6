"""``metapsych init DIR``: scaffold a review repository (studies/, configs/, an example trial, CI workflow).

The scaffold is copied from ``templates/review``; files named ``dot-*`` there become ``.*`` (so the
templates are not hidden in the package). The target folder must be new or empty.
"""

from __future__ import annotations

import sys
from pathlib import Path

TEMPLATE = Path(__file__).parent / "templates" / "review"


def run(directory: Path) -> int:
    """Create the scaffold in ``directory``; InputError (exit 2) when it is a file or a non-empty folder."""
    from metapsych.errors import InputError

    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InputError(f"{directory}: already exists and is not an empty folder "
                         "(expected a new or empty folder for the review repository)")
    written = scaffold(directory)
    sys.stderr.write(f"created {directory} with {len(written)} files:\n")
    sys.stderr.write("".join(f"  {path.relative_to(directory)}\n" for path in written))
    sys.stderr.write(f"next: cd {directory} && metapsych validate studies && metapsych run\n")
    return 0


def scaffold(directory: Path) -> list[Path]:
    """Copy the template tree into ``directory``; returns the files written, sorted."""
    written = []
    for source in sorted(p for p in TEMPLATE.rglob("*") if p.is_file()):
        parts = [part.replace("dot-", ".", 1) if part.startswith("dot-") else part
                 for part in source.relative_to(TEMPLATE).parts]
        target = directory.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        written.append(target)
    return sorted(written)
