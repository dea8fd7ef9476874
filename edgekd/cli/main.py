"""The `edgekd` command. Thin: parse flags, call a stage, render the result.

Command modules import torch and friends inside their functions so `edgekd --help` stays instant.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from edgekd import __version__
from edgekd.cli import console

app = typer.Typer(
    name="edgekd",
    help="Distil big video teachers into small students, export them, and measure them on the edge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgekd {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
) -> None:
    console.state.debug = debug


def _register_commands() -> None:
    from edgekd.cli import bench, data, distill, export, pipeline, pretrain, stream, teacher

    for module in (data, teacher, pretrain, distill, export, bench, pipeline, stream):
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning errors into one red line plus a hint."""
    argv = sys.argv[1:] if argv is None else argv
    console.state.debug = "--debug" in argv
    console.state.argv = list(argv)
    console.state.reporter = console.Reporter(console.err)
    try:
        code = app(args=argv, prog_name="edgekd", standalone_mode=False)
    except Exception as e:  # noqa: BLE001 - the edge of the program
        return console.report_error(e)
    except KeyboardInterrupt:
        console.err.print("[red]interrupted[/red]")
        return 130
    return code if isinstance(code, int) else 0  # a command's typer.Exit(code) comes back here


if __name__ == "__main__":
    sys.exit(main())
