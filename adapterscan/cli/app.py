"""The `adapterscan` command line: a thin layer over the library; every command lives in its own
module and prints only through rich consoles."""

from __future__ import annotations

import typer

from adapterscan._version import __version__
from adapterscan.cli import rules_cmd, scan_cmd

app = typer.Typer(
    name="adapterscan",
    help="Decide whether a LoRA/PEFT adapter is safe to load.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("scan")(scan_cmd.scan_command)
app.add_typer(rules_cmd.app, name="rules")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"adapterscan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version,
                                       is_eager=True, help="print the version")) -> None:
    """adapterscan: static analysis, behavioral probe and signed attestations for adapters."""


def main() -> None:
    app()
