"""Helpers shared by CLI commands: error reporting and output."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from adapterscan._quiet import VERBOSE_ENV
from adapterscan.errors import AdapterScanError, FetchError
from adapterscan.exit_codes import ExitCode
from adapterscan.extras import MissingExtraError, require_extra

T = TypeVar("T")

Verbose = Annotated[bool, typer.Option(
    "--verbose", "-v", help="show third-party warnings, log lines and progress bars (hidden by "
    "default); same as ADAPTERSCAN_VERBOSE=1")]


def set_verbose(verbose: bool) -> None:
    """--verbose: nothing is hidden, in this process and in the worker processes it starts
    (they inherit the environment)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def fail(message: str, code: ExitCode = ExitCode.ERROR) -> NoReturn:
    # soft_wrap: one message stays one line whatever the terminal's width (logs, grep).
    # escape: a message naming `adapterscan[postgres]` is text, not markup.
    stderr_console().print(f"[red]error[/]: {escape(message)}", markup=True, soft_wrap=True)
    raise typer.Exit(int(code))


def require(extra: str, what: str) -> None:
    """Exit 2 with one line naming the extra to install when it is missing; call it before any
    work (`what` is the command, e.g. "adapterscan demo")."""
    run_or_exit(lambda: require_extra(extra, what))


def run_or_exit(fn: Callable[[], T]) -> T:
    """Run fn; an AdapterScanError becomes its diagnostics and exit 2 (3 for fetch failures)."""
    try:
        return fn()
    except MissingExtraError as exc:  # one line, the same whether a command or the library saw it
        fail(exc.message)
    except FetchError as exc:
        stderr_console().print(exc.diagnostics(), markup=False)
        raise typer.Exit(int(ExitCode.INCOMPLETE)) from None
    except AdapterScanError as exc:
        stderr_console().print(exc.diagnostics(), markup=False)
        raise typer.Exit(int(ExitCode.ERROR)) from None


def write_output(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(output)  # atomic: a crash never leaves half a report
