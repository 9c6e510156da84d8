"""What the service runs with: the scan processes' set-up and the notifier."""

from __future__ import annotations

from pathlib import Path

from adapterscan.integrations.server.scanproc import ScanSetup
from adapterscan.integrations.server.worker import Notifier
from adapterscan.policy.policy import Policy


def make_setup(policy: Policy, endpoint: str | None, hub_token: str | None,
               sign_key: Path | None) -> ScanSetup:
    """Load the signing key once, at start-up: a bad key (or passphrase) stops the service
    before it accepts jobs. The scan processes get it decrypted, over their pipe."""
    pem = None
    if sign_key is not None:
        from cryptography.hazmat.primitives import serialization

        from adapterscan.provenance.keys import load_private_key

        pem = load_private_key(sign_key).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
    return ScanSetup(policy=policy, endpoint=endpoint, hub_token=hub_token, sign_key_pem=pem)


def make_notifier(url: str) -> Notifier:
    import httpx

    def notify(event: dict[str, object]) -> None:
        httpx.post(url, json=event, timeout=5.0).raise_for_status()

    return notify
