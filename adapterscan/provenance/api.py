"""The small public surface of provenance, for library users and the admission service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.policy.policy import Policy
from adapterscan.provenance.keys import load_private_key
from adapterscan.provenance.sign import sign_with_key
from adapterscan.provenance.statement import build_statement, statement_bytes
from adapterscan.provenance.trust import TrustConfig
from adapterscan.provenance.verify import VerificationResult, check_attestation, verify_source
from adapterscan.report import ScanReport

__all__ = ["TrustConfig", "VerificationResult", "attest", "attestation_json_for",
           "check_attestation", "verify_source"]


def attest(report: ScanReport, key: ec.EllipticCurvePrivateKey, *,
           policy: Policy | None = None) -> dict[str, Any]:
    """A key-signed Sigstore bundle (as a JSON object) attesting `report`."""
    return sign_with_key(statement_bytes(build_statement(report, policy=policy)), key)


def attestation_json_for(report: ScanReport, key_path: Path, *,
                         policy: Policy | None = None) -> str:
    """The bundle JSON for `report`, signed with the PEM key at `key_path`
    (passphrase from $ADAPTERSCAN_KEY_PASSPHRASE). Raises SigningError."""
    return json.dumps(attest(report, load_private_key(key_path), policy=policy))
