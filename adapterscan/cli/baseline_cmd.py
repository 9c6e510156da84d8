"""`adapterscan baseline build FOLDER... --out bank.json`: calibrate from trusted adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapterscan.cli.common import fail, write_output
from adapterscan.emit import Emitter
from adapterscan.rules.loader import load_ruleset
from adapterscan.static.alignment import BaseModelError
from adapterscan.static.baseline import AdapterSample, build_bank
from adapterscan.static.tensor_reader import TensorReadError
from adapterscan.static.weights import adapter_sample

app = typer.Typer(help="Calibration banks for weight statistics.", no_args_is_help=True)


@app.command("build")
def build(folders: Annotated[list[Path], typer.Argument(
              help="adapter folders you trust (adapter_config.json + *.safetensors)")],
          out: Annotated[Path, typer.Option("--out", help="where to write the JSON bank")]
          ) -> None:
    """Compute weight statistics of trusted adapters and write their robust location/scale."""
    emit = Emitter(load_ruleset())
    samples: list[AdapterSample] = []
    console = Console(stderr=True, highlight=False)
    for folder in folders:
        if not folder.is_dir():
            fail(f"{folder}: not a folder")
        try:
            sample = adapter_sample(folder, emit)
        except (ValueError, OSError, BaseModelError, TensorReadError) as exc:
            fail(f"{folder}: {exc}")
        console.print(f"{folder}: {len(sample.modules)} modules")
        samples.append(sample)
    if emit.errors or emit.skipped:
        problems = [e.message for e in emit.errors] + [s.reason for s in emit.skipped]
        fail("could not analyse every trusted adapter: " + "; ".join(problems[:5]))
    bank = build_bank(samples)
    write_output(json.dumps(bank, indent=1, sort_keys=True) + "\n", out)
    console.print(f"wrote {out} ({len(samples)} adapters)")
