"""Shared console state, error rendering and output-folder checks for the CLI."""

from __future__ import annotations

import difflib
import errno
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.markup import escape

from edgekd.errors import AccessError, ConfigError, EdgekdError
from edgekd.report import Reporter, make_console

out = make_console()  # tables and results (stdout)
err = make_console(stderr=True)  # errors, status, progress (stderr)

# help of the --video-root option that every command taking a dataset has
VIDEO_ROOT_HELP = ("Folder holding the class folders of UCF101/HMDB51 split files (default: the folder beside "
                   "them that holds most of them); the base of a CSV's relative paths.")

# click's usage-error base class: typer >= 0.2x carries its own copy of click, older typer uses the click package
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_ACCESS_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


@dataclass
class State:
    debug: bool = False
    reporter: Reporter = field(default_factory=lambda: Reporter(err))
    argv: list[str] = field(default_factory=list)  # this invocation's arguments, for usage hints


state = State()


def reporter() -> Reporter:
    """The reporter of this invocation (made anew by `edgekd.cli.main.main`): warnings said once per run."""
    return state.reporter


def report_error(e: BaseException) -> int:
    """Print one red line (plus a hint) for `e` and return the exit code."""
    if isinstance(e, typer.Exit):
        return e.exit_code
    if isinstance(e, typer.Abort):
        err.print("[red]aborted[/red]")
        return 130
    if type(e).__name__ == "NoArgsIsHelpError":  # `edgekd data` alone: the help is the answer (rich printed it)
        err.print(e.format_message(), markup=False, highlight=False, end="")
        return e.exit_code
    if state.debug and not isinstance(e, _CLICK_ERROR):  # a usage error is the user's, not a bug to trace
        err.print(traceback.format_exc(), markup=False, highlight=False)
    if isinstance(e, _CLICK_ERROR):
        e = usage_error(e, state.argv)
    elif isinstance(e, OSError) and e.errno in _ACCESS_ERRNOS and e.filename:
        e = access_error(e)
    if isinstance(e, EdgekdError):
        err.print(f"[bold red]error:[/bold red] {escape(e.message)}", highlight=False)
        if e.hint:
            err.print(f"[yellow]hint:[/yellow] {escape(e.hint)}", highlight=False)
        return e.exit_code
    err.print(f"[bold red]internal error:[/bold red] {escape(f'{type(e).__name__}: {e}')}", highlight=False)
    if not state.debug:
        err.print("[yellow]hint:[/yellow] re-run with --debug for the traceback and report it")
    return 1


def usage_error(e, argv: list[str]) -> ConfigError:
    """A click usage error (unknown command or option, bad or missing value) as our error + hint, same exit code.

    A mistyped option gets the closest real one; an option the command takes only as a config key
    (`pipeline --epochs 1`) gets the `--set` that does it.
    """
    ctx = getattr(e, "ctx", None)
    command = ctx.command_path if ctx is not None else _command_in(argv)
    lists = "its commands" if ctx is not None and hasattr(ctx.command, "commands") else "its options"
    message, hint = e.format_message(), f"`{command} --help` lists {lists}"
    option = getattr(e, "option_name", None)
    if option and hasattr(e, "possibilities"):  # NoSuchOption
        message = f"No such option: {option}"
        if key := _set_key(option, ctx):
            hint = f"`{command}` takes it as a config key: --set {key}={_value_after(option, argv)}"
        elif close := _closest_option(option, ctx, e.possibilities or []):
            message += f". Did you mean {close}?"
    error = ConfigError(message, hint)
    error.exit_code = e.exit_code
    return error


def _command_in(argv: list[str]) -> str:
    """`edgekd COMMAND` from the arguments (click leaves some errors without their command)."""
    words = [a for a in argv if not a.startswith("-")][:1]
    return " ".join(["edgekd", *words])


def _closest_option(option: str, ctx, possibilities: list[str]) -> str | None:
    """The option meant: one it begins (--labeled for --labeled-fraction) or a close spelling (--labelled)."""
    names = [o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts)] if ctx else possibilities
    longer = sorted(n for n in names if n.startswith(option + "-"))
    close = difflib.get_close_matches(option, names, n=1, cutoff=0.75)  # click's 0.6 offers --set for --student
    return (longer or close or [None])[0]


def _set_key(option: str, ctx) -> str | None:
    """The config key behind a distill flag such as --epochs, for the commands whose --set takes distill keys."""
    from edgekd.distill.config import FLAG_KEYS

    if ctx is None or ctx.command.name not in ("distill", "pipeline", "ablate"):
        return None
    return FLAG_KEYS.get(option.lstrip("-").replace("-", "_"))


def _value_after(option: str, argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
        if arg == option and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            return argv[i + 1]
    return "VALUE"


def access_error(e: OSError) -> AccessError:
    """A permission (or read-only disk) failure as one line naming the folder or file in the way, and the fix."""
    path = Path(os.path.abspath(e.filename))
    for p in (*reversed(path.parents), path):  # the first folder from the top that cannot be opened
        if os.path.isdir(p) and not os.access(p, os.R_OK | os.X_OK):
            return AccessError(f"cannot read the folder {p}: permission denied",
                               f"make it readable for this user (ls -ld {p} shows who may), or leave it out")
    if os.path.exists(path) and not os.access(path, os.R_OK):
        return AccessError(f"cannot read {path}: permission denied",
                           f"make it readable for this user (ls -l {path} shows who may)")
    target = path if os.path.exists(path) else path.parent
    return AccessError(f"cannot write {target}: {os.strerror(e.errno).lower()}", _write_hint(path))


def _write_hint(path: Path) -> str:
    from edgekd.home import edgekd_home

    home = edgekd_home().absolute()
    if path == home or home in path.parents:
        return (f"$EDGEKD_HOME ({home}) caches the synthetic dataset and the embedded teachers: make it writable, "
                "or set EDGEKD_HOME to a folder you can write")
    return "make it writable for this user, or choose another folder"


def check_writable(folder: str | Path, what: str, hint: str) -> None:
    """Fail now, before any work, when `folder` (or the nearest folder above it that exists) cannot be written."""
    folder = Path(folder)
    p = folder.absolute()
    while not os.path.exists(p) and p != p.parent:
        p = p.parent
    if not os.path.isdir(p):
        raise AccessError(f"the {what} {folder} cannot be created: {p} is a file", hint)
    if not os.access(p, os.W_OK | os.X_OK):
        where = "is not writable" if p == folder.absolute() else f"cannot be created: {p} is not writable"
        raise AccessError(f"the {what} {folder} {where}", hint)


def check_run_folder(cfg, run_dir: Path | None = None) -> None:
    """The folder a distillation writes (`run_dir` when resuming), checked before any data or teacher is touched."""
    if run_dir is not None:
        check_writable(run_dir, "run folder", "copy the run to a folder you can write and resume that copy")
    else:
        named = Path(cfg.run.dir) / cfg.run.name if cfg.run.name else Path(cfg.run.dir)
        check_writable(named, "run folder" if cfg.run.name else "runs folder",
                       "pass --set run.dir=FOLDER with a folder you can write")


def number_list(text: str, flag: str, kind: type = int, example: str = "1,4,8") -> list:
    """The comma-separated numbers of a flag such as --batch-sizes 1,4,8; anything else is an error naming the flag."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise ConfigError(f"{flag} takes comma-separated {kind.__name__} values, got {text!r}", f"e.g. {flag} {example}")
    return values


def positive_ints(text: str | None, flag: str) -> list[int] | None:
    """--batch-sizes 1,4,8: positive integers (None when the flag is not given)."""
    if text is None:
        return None
    values = number_list(text, flag)
    if any(v < 1 for v in values):
        raise ConfigError(f"{flag} needs positive integers, got {text!r}", f"e.g. {flag} 1,4,8")
    return values
