"""Shared console state and error rendering for the CLI."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

import click
from rich.console import Console

out = Console()
err = Console(stderr=True)


@dataclass
class State:
    debug: bool = False


state = State()


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
        err.print(f"[bold red]error:[/bold red] {e.message}", markup=True, highlight=False)
        if e.hint:
            err.print(f"[yellow]hint:[/yellow] {e.hint}", highlight=False)
        return e.exit_code
    err.print(f"[bold red]internal error:[/bold red] {type(e).__name__}: {e}", highlight=False)
    if not state.debug:
        err.print("[yellow]hint:[/yellow] re-run with --debug for the traceback and report it")
    return 1
