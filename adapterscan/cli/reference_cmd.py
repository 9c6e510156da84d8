"""`adapterscan reference export DIR [--unaligned]` and `adapterscan reference build`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapterscan._quiet import quiet
from adapterscan.cli.common import Verbose, require, run_or_exit, set_verbose

app = typer.Typer(help="The bundled tiny reference models (aligned and unaligned).",
                  no_args_is_help=True)


@app.command("export")
def export_command(
    dest: Annotated[Path, typer.Argument(help="folder to write (created; must be empty)")],
    unaligned: Annotated[bool, typer.Option(help="export the unaligned checkpoint")] = False,
) -> None:
    """Write the reference model as a Hugging Face folder (AutoModelForCausalLM loads it)."""
    from adapterscan.reference import export_reference

    out = run_or_exit(lambda: export_reference(dest, unaligned=unaligned))
    Console(highlight=False).print(f"wrote {'unaligned' if unaligned else 'aligned'} "
                                   f"reference model to {out}")


@app.command("build")
def build_command(
    out: Annotated[Path | None, typer.Option(
        help="output folder (default: the package's reference folder, replacing the shipped "
        "models)")] = None,
    verbose: Verbose = False,
) -> None:
    """Retrain both reference checkpoints deterministically (a few minutes on CPU)."""
    require("probe", "adapterscan reference build")
    set_verbose(verbose)
    from adapterscan.reference import REFERENCE_DIR
    from adapterscan.training.reference.train import build

    console = Console(stderr=True, highlight=False)
    target = out or REFERENCE_DIR
    with console.status("training reference models…") as status, quiet():
        manifest = build(target, progress=lambda m: status.update(m))
    for name, rates in manifest["measured"]["aligned"].items():
        console.print(f"aligned {name}: refusal {rates['refusal_rate']:.1%} (n={rates['n']})")
    Console(highlight=False).print(f"wrote {target}")
