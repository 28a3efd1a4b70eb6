"""HTML pages (jinja2, autoescape ON): ``index.html`` and one page per cell.

Every string from the data goes through jinja2's autoescaping; templates never mark data as safe. The
pages use no JavaScript and no external resources (inline CSS), so they open from a file or a CI artefact
without console errors.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metapsych.report.style import fmt, fmt_ci, fmt_p

if TYPE_CHECKING:
    import jinja2


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one jinja2 environment: package templates, autoescape on, strict undefined."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("metapsych.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(fmt=fmt, ci=fmt_ci, p=fmt_p, heat=heat_colour)
    return env


def cache_compiled_templates(folder: Path) -> None:
    """Keep the compiled templates in ``folder`` (jinja2's bytecode cache, keyed by each template's source),
    so that a run loads them instead of compiling them again (50 ms)."""
    import jinja2

    folder.mkdir(parents=True, exist_ok=True)
    environment().bytecode_cache = jinja2.FileSystemBytecodeCache(str(folder))


def render(template: str, **context: Any) -> str:
    """Render one template with the shared filters."""
    return environment().get_template(template).render(**context)


def heat_colour(value: float | None, scale: float = 1.0) -> str:
    """Background colour for a league-table cell: blue for positive (row better), red for negative."""
    if value is None:
        return "#ffffff"
    t = max(-1.0, min(1.0, value / scale))
    fade = int(255 - 110 * abs(t))
    return f"#{fade:02x}{fade:02x}ff" if t >= 0 else f"#ff{fade:02x}{fade:02x}"
