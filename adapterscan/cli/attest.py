"""Sign a scan report into an attestation (`adapterscan scan --sign-key/--attestation-out`)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from adapterscan.cli.common import fail, run_or_exit, write_output
from adapterscan.errors import SigningError
from adapterscan.report import ScanReport


def _default_out(report: ScanReport) -> Path:
    name = (report.subject.repo or Path(report.subject.source).name or "adapter").replace("/", "--")
    return Path(f"{name}.sigstore.json")


def attest_report(report: ScanReport, sign_key: Path | None, attestation_out: Path | None) -> None:
    """With a key: write a key-mode bundle. Without: keyless through Sigstore when an ambient
    OIDC credential exists (CI), else exit 2 with what to do."""
    from adapterscan.provenance.keys import load_private_key
    from adapterscan.provenance.sign import ambient_identity_token, sign_keyless, sign_with_key
    from adapterscan.provenance.statement import build_statement, statement_bytes

    out = attestation_out or _default_out(report)
    payload = run_or_exit(lambda: statement_bytes(build_statement(report)))
    if sign_key is not None:
        key = run_or_exit(lambda: load_private_key(sign_key))
        bundle = sign_with_key(payload, key)
        mode = "key"
    else:
        token = run_or_exit(ambient_identity_token)
        if token is None:
            fail("no --sign-key given and no ambient OIDC credential found for keyless signing; "
                 "pass --sign-key KEY.pem (see `adapterscan keygen`) or run in CI with an "
                 "OIDC identity (e.g. GitHub Actions `permissions: id-token: write`)")
        try:
            bundle = sign_keyless(payload, token)
        except SigningError as exc:
            fail(exc.message)
        mode = "keyless"
    write_output(json.dumps(bundle, indent=2) + "\n", out)
    Console(stderr=True, highlight=False).print(
        f"attestation ({mode}, verdict {report.verdict.decision.value}) written to {out}")
