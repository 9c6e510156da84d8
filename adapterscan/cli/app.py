"""The `adapterscan` command line: a thin layer over the library; every command lives in its own
module and prints only through rich consoles."""

from __future__ import annotations

import os

# The CLI draws its own progress with rich; the Hub client's and transformers' tqdm bars (read
# from this variable when those libraries are imported, later) would interleave with it.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import typer

from adapterscan._version import __version__
from adapterscan.cli import (
    base_cmd,
    baseline_cmd,
    batch_cmd,
    demo_cmd,
    examples_cmd,
    keygen_cmd,
    precommit_cmd,
    reference_cmd,
    rules_cmd,
    sarif_cmd,
    scan_cmd,
    serve_cmd,
    verify_cmd,
)

app = typer.Typer(
    name="adapterscan",
    help="Decide whether a LoRA/PEFT adapter is safe to load.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("scan")(scan_cmd.scan_command)
app.add_typer(rules_cmd.app, name="rules")
app.add_typer(baseline_cmd.app, name="baseline")
app.add_typer(reference_cmd.app, name="reference")
app.add_typer(base_cmd.app, name="base")
app.add_typer(examples_cmd.app, name="examples")
app.command("demo")(demo_cmd.demo_command)
app.command("verify")(verify_cmd.verify_command)
app.command("keygen")(keygen_cmd.keygen_command)
app.command("batch")(batch_cmd.batch_command)
app.command("serve")(serve_cmd.serve_command)
app.command("precommit")(precommit_cmd.precommit_command)
app.add_typer(sarif_cmd.app, name="sarif")


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
