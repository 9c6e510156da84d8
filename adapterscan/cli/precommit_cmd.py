"""`adapterscan precommit FILE...`: the pre-commit hook's entry (.pre-commit-hooks.yaml).

Maps the committed files onto adapter folders (integrations/precommit.py), scans each folder
and prints its text report. Exit: 2 when any scan could not start, else 1 when any adapter is
rejected, else 3 when any scan was incomplete, else 0 (the `adapterscan scan` codes, worst first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapterscan._quiet import quiet
from adapterscan.cli.common import Verbose, require, run_or_exit, set_verbose
from adapterscan.errors import AdapterScanError, FetchError
from adapterscan.exit_codes import ExitCode, exit_code_for
from adapterscan.integrations.precommit import adapter_folders
from adapterscan.pipeline import ScanOptions, scan
from adapterscan.policy.policy import Policy, load_policy
from adapterscan.render.text import TextFormatter, safe_text
from adapterscan.rules.loader import load_ruleset

# Which code a run of many scans ends with: an error, then a rejection, then incompleteness.
WORST_FIRST = (ExitCode.ERROR, ExitCode.REJECT, ExitCode.INCOMPLETE, ExitCode.PASS)


def worst(codes: list[ExitCode]) -> ExitCode:
    return next((c for c in WORST_FIRST if c in codes), ExitCode.PASS)


def precommit_command(
    files: Annotated[list[str], typer.Argument(help="files pre-commit passes (repo-relative)")],
    base: Annotated[str | None, typer.Option(
        help="also run the behavioral probe against this base (auto, reference, a folder, "
        "a Hub id); needs adapterscan[probe]")] = None,
    policy_file: Annotated[Path | None, typer.Option("--policy", help="policy TOML file")] = None,
    exit_zero: Annotated[bool, typer.Option(help="exit 0 even when the policy rejects")] = False,
    verbose: Verbose = False,
) -> None:
    """Scan the adapter folders that hold the given files (the pre-commit hook)."""
    set_verbose(verbose)
    if base is not None:
        require("probe", "adapterscan precommit --base")
    policy = run_or_exit(lambda: load_policy(policy_file)) if policy_file else Policy()
    ruleset = run_or_exit(load_ruleset)
    effective = run_or_exit(lambda: policy.apply_to(ruleset))  # what the text report shows
    out = Console(highlight=False, soft_wrap=True)
    folders = adapter_folders(files, Path.cwd())
    codes: list[ExitCode] = []
    for folder, covered in folders.items():
        out.print(f"[bold]{safe_text(str(folder))}[/] ({len(covered)} changed file"
                  f"{'s' if len(covered) != 1 else ''})")
        try:
            with quiet():
                report = scan(folder, options=ScanOptions(base=base), policy=policy,
                              ruleset=ruleset)
        except AdapterScanError as exc:
            typer.echo(exc.diagnostics())
            codes.append(ExitCode.INCOMPLETE if isinstance(exc, FetchError) else ExitCode.ERROR)
            continue
        typer.echo(TextFormatter(width=100).format(report, effective), nl=False)
        codes.append(exit_code_for(report, exit_zero=exit_zero))
    raise typer.Exit(int(worst(codes)))
