"""Progress for teacher training and evaluation, on the one reporter (edgekd.report)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from edgekd.report import Reporter


@contextmanager
def progress_bar(description: str, total: int, unit: str = "clips", quiet: bool = False,
                 reporter: Reporter | None = None) -> Iterator[Callable[..., None]]:
    """Yield `advance(n, note="")`: moves the bar by n items and shows `note` (e.g. the loss)."""
    reporter = Reporter.quiet() if quiet else (reporter or Reporter())
    with reporter.bar(description, total, unit) as bar:
        yield bar.advance


def log(text: str) -> None:
    """A status line on stderr (rich markup allowed)."""
    Reporter().print(text)
