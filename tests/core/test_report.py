"""The reporter: whole lines whatever the terminal, warnings said once, plain progress in logs."""

from __future__ import annotations

import io

from rich.console import Console

from edgekd.report import FoldingConsole, PlainBar, Reporter, format_duration


def _pipe(width: int = 40) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=width, soft_wrap=True, force_terminal=False), buf


def test_warning_is_one_line_said_once_per_key():
    console, buf = _pipe()
    rep = Reporter(console)
    long = "skipping 1 unreadable video: " + "/very" * 30 + "/broken.avi"
    for _ in range(3):
        rep.warn(long, key="bad-videos")
    rep.warn("another")
    lines = buf.getvalue().splitlines()
    assert lines == [f"warning: {long}", "warning: another"]


def test_quiet_reporter_prints_nothing():
    rep = Reporter.quiet()
    rep.warn("x")
    rep.step("y")
    with rep.bar("work", 10) as bar:
        bar.advance(10)


def test_plain_bar_prints_count_rate_and_eta_every_interval():
    console, buf = _pipe()
    now = [0.0]
    bar = PlainBar(console, "train", total=100, unit="clips", every=5.0, clock=lambda: now[0])
    for step in range(1, 11):  # 5 items a second: a line at 5 s and at 10 s, none in between
        now[0] = float(step)
        bar.advance(5, note=f"loss {1 / step:.2f}")
        assert len(buf.getvalue().splitlines()) == step // 5
    bar.finish()
    lines = buf.getvalue().splitlines()
    assert lines[0] == "train  25/100 (25%)  5.0 clips/s  elapsed 0:05  eta 0:15  loss 0.20"
    assert lines[1] == "train  50/100 (50%)  5.0 clips/s  elapsed 0:10  eta 0:10  loss 0.10"
    assert len(lines) == 2  # finish() adds nothing: the last line already showed the final state
    bar.advance(3)
    bar.finish()
    assert buf.getvalue().splitlines()[2].startswith("train  53/100 (53%)")  # ... but shows a newer one


def test_format_duration():
    assert (format_duration(7), format_duration(65), format_duration(3909)) == ("0:07", "1:05", "1:05:09")


def test_tables_fold_long_names_instead_of_cutting_them():
    from rich.table import Table

    buf = io.StringIO()
    console = FoldingConsole(file=buf, width=30, soft_wrap=True, force_terminal=False)
    name = "teachers/invariant-0123456789abcdef"
    table = Table()
    table.add_column("teacher")
    table.add_column("top-1", justify="right")
    table.add_row(name, "27.8%")
    console.print(table)
    text = buf.getvalue()
    assert "…" not in text
    assert "".join(line.strip("│ ").split("│")[0].strip() for line in text.splitlines()[3:-1]) == name
