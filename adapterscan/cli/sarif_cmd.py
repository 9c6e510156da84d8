"""`adapterscan sarif merge --out FILE IN...`: one SARIF log for code scanning (the Action)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from adapterscan.cli.common import run_or_exit, write_output
from adapterscan.render.sarif_merge import merge_sarif

app = typer.Typer(help="SARIF logs for code scanning.", no_args_is_help=True)


@app.command("merge")
def merge_command(
    inputs: Annotated[list[Path], typer.Argument(help="SARIF files from adapterscan scan")],
    out: Annotated[Path, typer.Option("--out", help="the merged SARIF file to write")],
) -> None:
    """Merge scans into one SARIF log: one run per scan, each in its own category, file
    locations of folders in this repository made repository-relative."""
    doc = run_or_exit(lambda: merge_sarif(inputs, Path.cwd()))
    write_output(json.dumps(doc, indent=2, allow_nan=False) + "\n", out)
