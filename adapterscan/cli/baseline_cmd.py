"""`adapterscan baseline build FOLDER... --out bank.json`: calibrate from trusted adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from adapterscan.cli.common import fail, require, stderr_console, write_output
from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.rules.loader import load_ruleset

if TYPE_CHECKING:
    from adapterscan.static.weights.baseline import AdapterSample

app = typer.Typer(help="Calibration banks for weight statistics.", no_args_is_help=True)


def _samples(folders: list[Path]) -> list[AdapterSample]:
    # The weight analysis (numpy) is imported here, not when the CLI starts.
    from adapterscan.static.formats.tensor_reader import TensorReadError
    from adapterscan.static.weights.alignment import BaseModelError
    from adapterscan.static.weights.analysis import adapter_sample

    emit = Emitter(load_ruleset())
    samples: list[AdapterSample] = []
    console = stderr_console()
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
    return samples


def _write(samples: list[AdapterSample], out: Path, meta: dict[str, JSONValue]) -> None:
    from adapterscan.static.weights.baseline import build_bank

    write_output(json.dumps(build_bank(samples, meta), indent=1, sort_keys=True) + "\n", out)
    stderr_console().print(f"wrote {out} ({len(samples)} adapters)")


@app.command("build")
def build(folders: Annotated[list[Path], typer.Argument(
              help="adapter folders you trust (adapter_config.json + *.safetensors)")],
          out: Annotated[Path, typer.Option("--out", help="where to write the JSON bank")]
          ) -> None:
    """Compute weight statistics of trusted adapters and write their robust location/scale."""
    _write(_samples(folders), out, {"built_by": "adapterscan baseline build"})


@app.command("reference")
def reference(out: Annotated[Path, typer.Option(
                  "--out", help="where to write the JSON bank (the shipped one is "
                  "adapterscan/reference/baseline_bank.json)")],
              workers: Annotated[int | None, typer.Option(
                  help="training processes (default: up to 2)")] = None) -> None:
    """Train the benign calibration adapters for the bundled reference model (cached; about
    5 minutes on 2 CPU cores the first time) and write the bank built from them."""
    require("probe", "adapterscan baseline reference")
    from adapterscan.training.examples.build import BASE_NAME
    from adapterscan.training.examples.calibration import (
        build_calibration_adapters,
        calibration_key,
    )

    console = stderr_console()
    folders = build_calibration_adapters(workers=workers, progress=console.print)
    _write(_samples(folders), out, {"built_by": "adapterscan baseline reference",
                                    "base": BASE_NAME, "calibration_key": calibration_key()})
