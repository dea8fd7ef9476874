"""Progress bars for teacher training and evaluation: count, throughput, a live loss, ETA (on stderr)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

_console = Console(stderr=True)


class _Rate(TextColumn):
    """Items per second, blank until rich has an estimate."""

    def __init__(self, unit: str):
        super().__init__("")
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f} {self.unit}/s", style="cyan")


@contextmanager
def progress_bar(description: str, total: int, unit: str = "clips",
                 quiet: bool = False) -> Iterator[Callable[..., None]]:
    """Yield `advance(n, note="")`: moves the bar by n items and shows `note` (e.g. the loss)."""
    if quiet or total <= 0:
        yield lambda n=1, note="": None
        return
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(unit),
                        TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TextColumn("eta"),
                        TimeRemainingColumn(), console=_console)
    with progress:
        task = progress.add_task(description, total=total, note="")

        def advance(n: int = 1, note: str = "") -> None:
            progress.update(task, advance=n, note=note)

        yield advance


def log(text: str) -> None:
    """A status line on stderr (rich markup allowed)."""
    _console.print(text, highlight=False)
