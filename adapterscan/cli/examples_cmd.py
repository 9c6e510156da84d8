"""`adapterscan examples build [--out DIR]`: the labelled example adapters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapterscan._quiet import quiet
from adapterscan.cli.common import Verbose, require, set_verbose

app = typer.Typer(help="Labelled example adapters trained on the bundled reference model.",
                  no_args_is_help=True)


@app.command("build")
def build_command(
    out: Annotated[Path | None, typer.Option(help="output folder (default: user cache)")] = None,
    force: Annotated[bool, typer.Option(help="rebuild even when a complete set exists")] = False,
    verbose: Verbose = False,
) -> None:
    """Build (or reuse) the example adapters and list them."""
    require("probe", "adapterscan examples build")
    from adapterscan.cli.example_set import build_examples

    set_verbose(verbose)
    err = Console(stderr=True, highlight=False)
    with err.status("building example adapters…") as status, quiet():
        examples = build_examples(out, force=force, progress=lambda m: status.update(m))
    console = Console(highlight=False)
    for ex in examples:
        console.print(f"{ex.expected_class:9} {ex.path}")
