"""The `adapterscan` command line: a thin layer over the library; every command lives in its own
module and prints only through rich consoles."""

from __future__ import annotations

import os

# The CLI draws its own progress with rich; the Hub client's and transformers' tqdm bars (read
# from this variable when those libraries are imported, later) would interleave with it.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import importlib
import sys
from typing import Any

import typer

from adapterscan._version import __version__

# name -> (module under adapterscan.cli, attribute, a sub-app?). Only the invoked command's
# module is imported (`adapterscan scan` does not pay for base, serve, batch...); help, a
# version request or an unknown name builds them all.
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "scan": ("scan_cmd", "scan_command", False),
    "rules": ("rules_cmd", "app", True),
    "baseline": ("baseline_cmd", "app", True),
    "reference": ("reference_cmd", "app", True),
    "base": ("base_cmd", "app", True),
    "examples": ("examples_cmd", "app", True),
    "demo": ("demo_cmd", "demo_command", False),
    "verify": ("verify_cmd", "verify_command", False),
    "keygen": ("keygen_cmd", "keygen_command", False),
    "batch": ("batch_cmd", "batch_command", False),
    "serve": ("serve_cmd", "serve_command", False),
    "precommit": ("precommit_cmd", "precommit_command", False),
    "sarif": ("sarif_cmd", "app", True),
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"adapterscan {__version__}")
        raise typer.Exit()


def _root(version: bool = typer.Option(False, "--version", callback=_version,
                                       is_eager=True, help="print the version")) -> None:
    """adapterscan: static analysis, behavioral probe and signed attestations for adapters."""


def build_app(only: str | None = None) -> typer.Typer:
    """The command line with every command, or with the one named `only` (its module alone is
    imported; the root callback keeps it a group, so argv parses the same)."""
    cli = typer.Typer(
        name="adapterscan",
        help="Decide whether a LoRA/PEFT adapter is safe to load.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name, (module, attr, group) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(f"adapterscan.cli.{module}"), attr)
        if group:
            cli.add_typer(target, name=name)
        else:
            cli.command(name)(target)
    cli.callback()(_root)
    return cli


def __getattr__(name: str) -> Any:
    """`app`, the full command line (tests, docs), built on first use."""
    if name == "app":
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(name)


def main() -> None:
    args = sys.argv[1:]
    build_app(args[0] if args and args[0] in COMMANDS else None)()
