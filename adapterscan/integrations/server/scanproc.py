"""What runs inside a scan worker process: fetch and scan one job's commit, sign the report.

The service's worker threads hand each claimed job to a long-lived spawned process (procworker)
and wait for its outcome with a time limit; the database, the lease and the verdict stay in the
service process. A scan that hangs or crashes kills only its process.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from adapterscan.integrations.procworker import Handler, describe
from adapterscan.policy.policy import Policy

SCAN_NICENESS = 5


@dataclass(frozen=True)
class ScanSetup:
    """Plain data, pickled to each scan process when it starts."""

    policy: Policy
    endpoint: str | None = None
    hub_token: str | None = field(default=None, repr=False)
    # The signing key as unencrypted PKCS#8 PEM: loaded (and its passphrase used) once by the
    # service at start, handed to its own children over a pipe, never written anywhere.
    sign_key_pem: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ScanOutcome:
    decision: str
    exit_code: int
    report_json: str | None = None
    attestation_json: str | None = None
    error: str | None = None

    @staticmethod
    def failed(error: str) -> ScanOutcome:
        """No report: never a pass (exit 3, scan incomplete)."""
        return ScanOutcome("error", 3, error=error)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> ScanOutcome:
        return ScanOutcome(**json.loads(text))


def scan_request(repo: str, revision: str) -> str:
    return json.dumps({"repo": repo, "revision": revision})


def scan_handler(setup: ScanSetup) -> Handler:
    """Runs in the scan process: set up once (imports, rule set, key), then scan per request."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from adapterscan.exit_codes import exit_code_for
    from adapterscan.fetch.hub_options import HubOptions
    from adapterscan.pipeline import ScanOptions, scan
    from adapterscan.provenance.api import attest
    from adapterscan.rules.loader import load_ruleset

    # Scans are batch work: below the service's own threads, so that deliveries get their 202,
    # reads their answer and leases their renewal on time while every core is scanning.
    os.nice(SCAN_NICENESS)
    ruleset = load_ruleset()
    options = ScanOptions(hub=HubOptions(endpoint=setup.endpoint, token=setup.hub_token))
    key = None
    if setup.sign_key_pem is not None:
        loaded = serialization.load_pem_private_key(setup.sign_key_pem, password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)  # checked by the service at start
        key = loaded

    def handle(request: str) -> str:
        job = json.loads(request)
        try:
            report = scan(f"hf://{job['repo']}@{job['revision']}", options=options,
                          policy=setup.policy, ruleset=ruleset)
        except Exception as exc:  # a failed scan is an error verdict, never a pass
            return ScanOutcome.failed(describe(exc)).to_json()
        attestation = error = None
        if key is not None:
            try:
                attestation = json.dumps(attest(report, key, policy=setup.policy))
            except Exception as exc:  # unsigned verdicts are recorded as errors, not passes
                error = f"signing failed: {exc}"
        code = int(exit_code_for(report))
        if error is not None:  # an unsigned pass is no pass: exit 3; a rejection stays 1
            return ScanOutcome("error", code or 3, report.to_json(indent=None), None,
                               error).to_json()
        return ScanOutcome(report.verdict.decision.value, code, report.to_json(indent=None),
                           attestation).to_json()

    return handle
