"""`adapterscan scan SOURCE`."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapterscan._quiet import quiet
from adapterscan.cli.common import Verbose, require, run_or_exit, set_verbose, write_output
from adapterscan.cli.malloc_tuning import keep_freed_memory
from adapterscan.errors import UsageError
from adapterscan.exit_codes import exit_code_for
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.pipeline import DEFAULT_MAX_FILE_BYTES, ScanOptions, scan
from adapterscan.policy.policy import Policy, load_policy
from adapterscan.probe.options import ProbeOptions
from adapterscan.probe.session import BaseStore
from adapterscan.render.interface import OutputFormat, formatter_for
from adapterscan.render.text import safe_text
from adapterscan.report import ScanReport
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.source import FetchLimits
from adapterscan.static.options import DeltaOptions, StaticOptions, WeightOptions


class ProbeDtype(enum.StrEnum):
    AUTO = "auto"
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"


def scan_command(
    source: Annotated[str, typer.Argument(
        help="folder, hf://owner/repo[@rev] or owner/repo[@rev]")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="report format")]
    = OutputFormat.TEXT,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the report here")]
    = None,
    policy_file: Annotated[Path | None, typer.Option("--policy", help="policy TOML file")] = None,
    base: Annotated[str | None, typer.Option(
        "--base", help="run the behavioral probe against this base model: 'auto' (the base "
        "the adapter's config names, from the Hugging Face cache or the Hub, pinned to a "
        "commit), 'reference', a folder or a Hub id owner/name[@rev]")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Hub endpoint (default: HF_ENDPOINT)")]
    = None,
    token: Annotated[str | None, typer.Option(help="Hub token (default: HF_TOKEN)")] = None,
    revision: Annotated[str | None, typer.Option(help="Hub revision (branch, tag or sha)")]
    = None,
    max_files: Annotated[int, typer.Option(help="refuse to inventory more entries")] = 10_000,
    max_file_size: Annotated[int, typer.Option(
        help="bytes; larger files are neither hashed nor analysed (scan incomplete)")]
    = DEFAULT_MAX_FILE_BYTES,
    unaligned: Annotated[Path | None, typer.Option(
        help="the unaligned twin of --base (a folder) for the Safe-LoRA alignment check; "
        "with --base reference the bundled pre-safety checkpoint is used")] = None,
    baseline: Annotated[Path | None, typer.Option(
        help="calibration bank from `adapterscan baseline build` (default: the bundled bank "
        "when scanning against the reference)")] = None,
    device: Annotated[str, typer.Option(
        help="probe device with --base: auto, cpu or cuda[:N]")] = "auto",
    dtype: Annotated[ProbeDtype, typer.Option(
        help="probe dtype with --base (auto: float32 on CPU, bfloat16/float16 on CUDA)")]
    = ProbeDtype.AUTO,
    max_prompts: Annotated[int, typer.Option(
        min=8, help="probe prompts per suite (harmful, benign); fewer is faster and noisier")]
    = ProbeOptions.max_prompts,
    trigger_search: Annotated[bool, typer.Option(
        help="search for trigger strings that switch refusal off")] = True,
    fast: Annotated[bool, typer.Option(
        help="probe by first-token refusal probability and weight-direction signals only, "
        "no generation (for big bases on a CPU; the report says which signal decided)")]
    = False,
    base_cache: Annotated[bool, typer.Option(
        help="keep the base's measurements in the user cache, keyed by its file digests, the "
        "prompts and the settings, so the next scan against the same base skips them")] = True,
    recover_adapter: Annotated[Path | None, typer.Option(
        help="a full checkpoint scanned with --base: write the equivalent PEFT LoRA adapter "
        "(B·A = ΔW against the base, scale 1) to this new folder")] = None,
    exit_zero: Annotated[bool, typer.Option(help="exit 0 even when the policy rejects")] = False,
    sign_key: Annotated[Path | None, typer.Option(
        help="sign an attestation of this scan with this PEM private key")] = None,
    attestation_out: Annotated[Path | None, typer.Option(
        help="write the signed attestation (Sigstore bundle JSON) here")] = None,
    verbose: Verbose = False,
) -> None:
    """Scan an adapter and print a report. Exit 0 pass, 1 reject, 2 error, 3 incomplete."""
    set_verbose(verbose)
    # Before any work: a missing extra is found now, not after a scan that took minutes.
    if base is not None:
        require("probe", "adapterscan scan --base")
    if attestation_out is not None and sign_key is None:
        require("sign", "adapterscan scan --attestation-out without --sign-key (keyless "
                "signing)")
    if recover_adapter is not None:
        run_or_exit(lambda: _check_recover(recover_adapter, base))
    policy = run_or_exit(lambda: load_policy(policy_file)) if policy_file else Policy()
    ruleset: RuleSet = run_or_exit(load_ruleset)
    options = ScanOptions(
        static=StaticOptions(weights=WeightOptions(unaligned_dir=unaligned, baseline=baseline),
                             delta=DeltaOptions(recover_dir=recover_adapter)),
        fetch_limits=FetchLimits(max_files=max_files, max_file_bytes=max_file_size),
        hub=HubOptions(endpoint=endpoint or os.environ.get("HF_ENDPOINT"),
                       token=token or os.environ.get("HF_TOKEN"), revision=revision),
        base=base,
        probe=ProbeOptions(device=device, dtype=dtype.value, max_prompts=max_prompts,
                           trigger_search=trigger_search, generate=not fast),
        probe_cache=_base_cache() if base is not None and base_cache else None,
    )
    keep_freed_memory()
    err = Console(stderr=True, highlight=False)
    with err.status("scanning…") as status, quiet():
        report: ScanReport = run_or_exit(lambda: scan(
            source, options=options, policy=policy, ruleset=ruleset,
            progress=lambda msg: status.update(f"scanning: {safe_text(msg)}")))
    effective = policy.apply_to(ruleset)
    text = formatter_for(fmt, color=output is None and err.is_terminal).format(report, effective)
    write_output(text, output)
    if sign_key is not None or attestation_out is not None:
        from adapterscan.cli.attest import attest_report

        attest_report(report, sign_key, attestation_out)
    raise typer.Exit(int(exit_code_for(report, exit_zero=exit_zero)))


def _check_recover(folder: Path, base: str | None) -> None:
    if base is None:
        raise UsageError("--recover-adapter needs --base (the delta is taken against it)")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"--recover-adapter: {folder} exists and is not an empty folder")


def _base_cache() -> BaseStore:
    from adapterscan.probe.base_store import DiskBaseCache, default_root

    return DiskBaseCache(default_root())
