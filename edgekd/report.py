"""The one reporter: status lines, once-per-run warnings and progress, whatever the terminal.

Every stage takes a `Reporter` (made once at the CLI edge, or `Reporter.quiet()` in tests and
APIs) instead of building its own consoles and bars. Output never depends on the terminal:

- lines are never soft-wrapped, so a long path stays whole and copyable on one line;
- a warning is one console line, said once per key per run, never Python's `warnings` format;
- on a TTY a bar is a rich progress bar (count, rate, note, ETA); without one (CI, a pipe, a log
  file) it is a plain line every `plain_every` seconds plus one at the end: done/total, rate, ETA.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console

PLAIN_EVERY_S = 5.0
# Without a terminal rich assumes 80 columns; tables would then cut names. Logs are read in
# editors and browsers, so lay tables out wide there (COLUMNS, when set, still wins).
_PIPE_WIDTH = 200


class FoldingConsole(Console):
    """A console whose tables fold long cells onto more lines instead of cutting them with '…'."""

    def print(self, *objects, **kwargs) -> None:
        from rich.table import Table

        for obj in objects:
            if isinstance(obj, Table):
                for column in obj.columns:
                    if column.overflow == "ellipsis":
                        column.overflow = "fold"
        super().print(*objects, **kwargs)


def make_console(stderr: bool = False) -> Console:
    """A console whose lines never wrap (soft_wrap), whose tables fold, and are wide enough in a pipe."""
    console = FoldingConsole(stderr=stderr, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = FoldingConsole(stderr=stderr, soft_wrap=True, width=_PIPE_WIDTH)
    return console


class Reporter:
    """Status lines, warnings said once, and progress bars on one console (stderr by default)."""

    def __init__(self, console: Console | None = None, enabled: bool = True, plain_every: float = PLAIN_EVERY_S):
        self.console = console or make_console(stderr=True)
        self.enabled = enabled
        self.plain_every = plain_every
        self._warned: set[str] = set()

    @classmethod
    def quiet(cls) -> "Reporter":
        """A reporter that prints nothing (tests, library calls)."""
        return cls(enabled=False)

    def print(self, *objects, **kwargs) -> None:
        """Print rich renderables or markup text (tables, headers)."""
        if self.enabled:
            self.console.print(*objects, highlight=False, **kwargs)

    def step(self, text: str) -> None:
        self.print(f"[bold cyan]»[/bold cyan] {text}")

    def done(self, text: str) -> None:
        self.print(f"[green]✓[/green] {text}")

    def warn(self, text: str, key: str | None = None) -> None:
        """One yellow line; a second warning with the same `key` (default: the text) is dropped."""
        key = text if key is None else key
        if key in self._warned:
            return
        self._warned.add(key)
        self.print(f"[yellow]warning:[/yellow] {text}")

    @contextmanager
    def bar(self, description: str, total: int, unit: str = "clips") -> Iterator["Bar"]:
        """A progress bar over `total` items; yields a Bar with `advance(n=1, note="")`."""
        if not self.enabled or total <= 0:
            yield Bar()
        elif self.console.is_terminal:
            with _rich_bar(self.console, description, total, unit) as bar:
                yield bar
        else:
            bar = PlainBar(self.console, description, total, unit, self.plain_every)
            try:
                yield bar
            finally:
                bar.finish()


class Bar:
    """A bar that shows nothing (quiet reporter, empty total)."""

    def advance(self, n: int = 1, note: str = "") -> None:
        pass

    def describe(self, description: str) -> None:
        pass


class PlainBar(Bar):
    """Progress for logs: `desc  done/total  (pct)  rate unit/s  eta  note`, every few seconds."""

    def __init__(self, console: Console, description: str, total: int, unit: str, every: float,
                 clock=time.monotonic):
        self.console, self.description, self.total, self.unit, self.every = console, description, total, unit, every
        self.clock = clock
        self.done = self.shown = 0
        self.note = ""
        self.t0 = self.last = clock()

    def describe(self, description: str) -> None:
        self.description = description

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self.note = note or self.note
        if self.clock() - self.last >= self.every:
            self._line()

    def finish(self) -> None:
        if self.done != self.shown:  # the final state, unless the last line already showed it
            self._line()

    def _line(self) -> None:
        self.last = now = self.clock()
        self.shown = self.done
        elapsed = max(now - self.t0, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 and self.done < self.total else 0.0
        self.console.print(f"{self.description}  {self.done}/{self.total} ({100 * self.done / self.total:.0f}%)  "
                           f"{rate:.1f} {self.unit}/s  elapsed {format_duration(elapsed)}  "
                           f"eta {format_duration(left)}" + (f"  {self.note}" if self.note else ""),
                           highlight=False, markup=False)


def format_duration(seconds: float) -> str:
    """0:07, 1:05:09: whole seconds, like rich's time columns."""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@contextmanager
def _rich_bar(console: Console, description: str, total: int, unit: str) -> Iterator[Bar]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(TextColumn):
        def __init__(self):
            super().__init__("")

        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.1f} {unit}/s", style="cyan")

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
                        TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TextColumn("eta"),
                        TimeRemainingColumn(), console=console, transient=True)

    class RichBar(Bar):
        def advance(self, n: int = 1, note: str = "") -> None:
            progress.update(task, advance=n, **({"note": note} if note else {}))

        def describe(self, description: str) -> None:
            progress.update(task, description=description)

    with progress:
        task = progress.add_task(description, total=total, note="")
        yield RichBar()
