"""Progress for long runs: a rich bar on a terminal, plain lines in CI (no TTY), nothing when quiet."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[str, int, int], None]


@contextmanager
def progress_reporter(quiet: bool) -> Iterator[Progress]:
    """Yield a ``progress(stage, done, total)`` callback suited to where stderr goes."""
    if quiet:
        yield lambda stage, done, total: None
    elif sys.stderr.isatty():
        with _rich() as report:
            yield report
    else:
        yield _PlainLines()


class _PlainLines:
    """One line when a stage starts and at every tenth of it, so CI logs stay short."""

    def __init__(self) -> None:
        self.last: tuple[str, int] | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        step = max(1, total // 10)
        if done not in (0, total) and done % step:
            return
        if self.last == (stage, done):
            return
        self.last = (stage, done)
        sys.stderr.write(f"{stage}: {done}/{total}\n")
        sys.stderr.flush()


@contextmanager
def _rich() -> Iterator[Progress]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

    tasks: dict[str, int] = {}
    with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
             console=Console(stderr=True), transient=False) as bar:

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        yield report
