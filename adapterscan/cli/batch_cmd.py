"""`adapterscan batch INPUT --engine local|ray --out results.jsonl`."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from adapterscan.cli.common import require, run_or_exit
from adapterscan.exit_codes import ExitCode

if TYPE_CHECKING:
    from adapterscan.integrations.batch import ItemResult


def batch_command(
    input_file: Annotated[Path, typer.Argument(help="file with one source per line")],
    out: Annotated[Path, typer.Option("--out", help="JSON lines results (appended; resumable)")],
    engine: Annotated[str, typer.Option(help="local or ray")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start a "
                                                "local Ray instance)")] = None,
    workers: Annotated[int, typer.Option(help="parallel scans (local) / CPUs (local Ray)")] = 2,
    timeout: Annotated[float, typer.Option(help="seconds per item before it is killed")] = 600.0,
    base: Annotated[str | None, typer.Option(help="probe against this base model")] = None,
    gpus_per_probe: Annotated[float, typer.Option(help="GPUs a probing Ray task requests")]
    = 0.0,
    policy_file: Annotated[Path | None, typer.Option("--policy", help="policy TOML")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Hub endpoint")] = None,
) -> None:
    """Scan many adapters. Exit 0 when every item passed, 1 when any was rejected, 3 when any
    could not be scanned."""
    # Checked here, once, before any worker starts: every item would fail the same way.
    if engine == "ray":
        require("ray", "adapterscan batch --engine ray")
    if base is not None:
        require("probe", "adapterscan batch --base")
    # Imported here: every other command (scan above all) starts faster without them.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from adapterscan.integrations.batch import BatchOptions, done_sources, read_sources
    from adapterscan.integrations.batch import run_batch as _run_batch

    sources = run_or_exit(lambda: read_sources(input_file))
    options = BatchOptions(base=base, policy_file=str(policy_file) if policy_file else None,
                           endpoint=endpoint or os.environ.get("HF_ENDPOINT"),
                           token=os.environ.get("HF_TOKEN"), timeout_s=timeout,
                           workers=workers, gpus_per_probe=gpus_per_probe)
    skipped = len(set(sources) & done_sources(out))
    err = Console(stderr=True, highlight=False)
    with Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bar:
        task = bar.add_task("scan", total=len(sources) - skipped)
        results = run_or_exit(lambda: _run_batch(
            sources, out, engine=engine, options=options, address=address,
            progress=lambda _r: bar.advance(task)))
    _summary(results, skipped, err)
    raise typer.Exit(int(_exit_code(results)))


def _exit_code(results: list[ItemResult]) -> ExitCode:
    codes = {r.exit_code for r in results}
    if 1 in codes:
        return ExitCode.REJECT
    if codes - {0}:
        return ExitCode.INCOMPLETE
    return ExitCode.PASS


def _summary(results: list[ItemResult], skipped: int, con: Console) -> None:
    from rich.table import Table

    table = Table(title=f"batch: {len(results)} scanned, {skipped} already done")
    for col in ("source", "status", "verdict", "rules", "seconds"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(r.source, r.status, r.decision or "-",
                      ", ".join(r.rule_ids) or (r.error or "")[:80], f"{r.seconds:.2f}")
    con.print(table)
    counts = Counter(r.decision or r.status for r in results)
    con.print("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    # Each distinct error once, in full: N items that failed for one reason are one line.
    for error, n in Counter(r.error for r in results if r.error).most_common():
        con.print(f"{n} item{'s' if n > 1 else ''} not scanned: {error}", markup=False)
