"""Status lines and progress bars for the export steps (stderr, so stdout stays clean for tables)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeRemainingColumn)


class Reporter:
    """One place that prints step lines and progress bars; `quiet=True` silences both (tests, APIs)."""

    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True)

    def step(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[bold cyan]»[/bold cyan] {text}", highlight=False)

    def done(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[green]✓[/green] {text}", highlight=False)

    def warn(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]![/yellow] {text}", highlight=False)

    @contextmanager
    def bar(self, description: str, total: int, unit: str = "clips") -> Iterator["Bar"]:
        """A bar with count, rate (items/s) and ETA; yields `advance(n)`."""
        if self.quiet or total <= 0 or not self.console.is_terminal:  # no bar debris in logs
            yield Bar(None, None)
            return
        progress = Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                            TaskProgressColumn(), _RateColumn(unit), TimeRemainingColumn(),
                            console=self.console, transient=True)
        with progress:
            task = progress.add_task(description, total=total)
            yield Bar(progress, task)


class Bar:
    def __init__(self, progress: Progress | None, task):
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


class _RateColumn(TextColumn):
    """Throughput in `unit`/s (blank until rich has a speed estimate)."""

    def __init__(self, unit: str):
        super().__init__("")
        self.unit = unit

    def render(self, task):
        from rich.text import Text

        speed = task.finished_speed or task.speed
        return Text(f"{speed:6.1f} {self.unit}/s" if speed else " " * (9 + len(self.unit)), style="progress.data.speed")
