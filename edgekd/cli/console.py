"""Shared console state and error rendering for the CLI."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import click
from rich.markup import escape

from edgekd.report import Reporter, make_console

out = make_console()  # tables and results (stdout)
err = make_console(stderr=True)  # errors, status, progress (stderr)

# help of the --video-root option that every command taking a dataset has
VIDEO_ROOT_HELP = ("Folder holding the class folders of UCF101/HMDB51 split files (default: the folder beside "
                   "them that holds most of them); the base of a CSV's relative paths.")


@dataclass
class State:
    debug: bool = False
    reporter: Reporter = field(default_factory=lambda: Reporter(err))


state = State()


def reporter() -> Reporter:
    """The reporter of this invocation (made anew by `edgekd.cli.main.main`): warnings said once per run."""
    return state.reporter


def report_error(e: BaseException) -> int:
    """Print one red line (plus a hint) for `e` and return the exit code."""
    from edgekd.errors import EdgekdError

    if isinstance(e, click.exceptions.Exit):
        return e.exit_code
    if isinstance(e, click.exceptions.Abort):
        err.print("[red]aborted[/red]")
        return 130
    if isinstance(e, click.ClickException):
        e.show()
        return e.exit_code
    if state.debug:
        err.print(traceback.format_exc(), markup=False, highlight=False)
    if isinstance(e, EdgekdError):
        err.print(f"[bold red]error:[/bold red] {escape(e.message)}", highlight=False)
        if e.hint:
            err.print(f"[yellow]hint:[/yellow] {escape(e.hint)}", highlight=False)
        return e.exit_code
    err.print(f"[bold red]internal error:[/bold red] {escape(f'{type(e).__name__}: {e}')}", highlight=False)
    if not state.debug:
        err.print("[yellow]hint:[/yellow] re-run with --debug for the traceback and report it")
    return 1
