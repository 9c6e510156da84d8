"""`adapterscan verify SOURCE --attestation FILE`: do these bytes carry a signed, passing scan?"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from adapterscan._version import __version__
from adapterscan.cli.common import run_or_exit
from adapterscan.exit_codes import ExitCode
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.policy.policy import Policy, load_policy
from adapterscan.report import Decision, finding_to_dict


def verify_command(
    source: Annotated[str, typer.Argument(
        help="folder, hf://owner/repo[@rev] or owner/repo[@rev]")],
    attestation: Annotated[Path, typer.Option("--attestation", "-a",
                                              help="the *.sigstore.json bundle")],
    key: Annotated[list[Path] | None, typer.Option(
        "--key", help="trusted public key PEM (repeatable) for key-signed bundles")] = None,
    identity: Annotated[str | None, typer.Option(
        help="keyless: the signer identity (certificate SAN) you trust")] = None,
    issuer: Annotated[str | None, typer.Option(
        help="keyless: the OIDC issuer URL of that identity")] = None,
    trusted_root: Annotated[Path | None, typer.Option(
        help="keyless: a pinned Sigstore trusted_root.json (default: Sigstore's public root)")]
    = None,
    offline: Annotated[bool, typer.Option(
        help="keyless: use the cached Sigstore trusted root, no TUF refresh")] = False,
    policy_file: Annotated[Path | None, typer.Option("--policy", help="policy TOML file")] = None,
    max_age_days: Annotated[float | None, typer.Option(
        help="reject attestations older than this (default: the policy's limit)")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json")] = "text",
    endpoint: Annotated[str | None, typer.Option(help="Hub endpoint (default: HF_ENDPOINT)")]
    = None,
    token: Annotated[str | None, typer.Option(help="Hub token (default: HF_TOKEN)")] = None,
    revision: Annotated[str | None, typer.Option(help="Hub revision (branch, tag or sha)")]
    = None,
) -> None:
    """Verify a signed scan attestation against the source as it is now.

    Exit 0 when the signature holds, every file matches and every claim is acceptable; 1 with
    every reason otherwise; 2 on usage errors.
    """
    from adapterscan.provenance.bundle import read_bundle
    from adapterscan.provenance.keys import load_public_keys
    from adapterscan.provenance.trust import TrustConfig
    from adapterscan.provenance.verify import verify_source

    if fmt not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--format")
    if (identity is None) != (issuer is None):
        raise typer.BadParameter("--identity and --issuer go together")
    policy = run_or_exit(lambda: load_policy(policy_file)) if policy_file else Policy()
    keys = run_or_exit(lambda: load_public_keys(key or ()))
    data = run_or_exit(lambda: read_bundle(attestation))
    trust = TrustConfig(keys=keys, identity=identity, issuer=issuer, trusted_root=trusted_root,
                        offline=offline)
    hub = HubOptions(endpoint=endpoint or os.environ.get("HF_ENDPOINT"),
                     token=token or os.environ.get("HF_TOKEN"), revision=revision)
    result = run_or_exit(lambda: verify_source(source, data, trust, policy=policy, hub=hub,
                                               max_age_days=max_age_days))
    if fmt == "json":
        typer.echo(json.dumps({
            "tool": {"name": "adapterscan", "version": __version__},
            "ok": result.ok, "decision": result.verdict.decision.value,
            "reasons": list(result.verdict.reasons), "signer": result.signer,
            "findings": [finding_to_dict(f) for f in result.findings],
        }, indent=2))
    else:
        out = Console(highlight=False)
        for f in result.findings:
            where = f" ({f.location.file})" if f.location.file else ""
            out.print(escape(f"{f.rule_id} {f.rule_name} [{f.severity.value}]{where}: "
                             f"{f.message}"))
        word = {Decision.PASS: "[green]VERIFIED[/]", Decision.WARN: "[yellow]VERIFIED, WITH "
                "WARNINGS[/]", Decision.FAIL: "[red]REJECTED[/]"}[result.verdict.decision]
        out.print(f"{word} {escape(source)}" + (f" — signed by {escape(result.signer)}"
                                                 if result.signer else ""))
        for r in result.verdict.reasons:
            out.print(f"  - {escape(r)}")
    raise typer.Exit(int(ExitCode.PASS if result.ok else ExitCode.REJECT))
