"""The real scanner, signer and notifier the service runs with (tests inject their own)."""

from __future__ import annotations

from pathlib import Path

from adapterscan.integrations.server.queue import Job
from adapterscan.integrations.server.worker import Notifier, Scanner, Signer
from adapterscan.policy.policy import Policy
from adapterscan.report import ScanReport


def make_scanner(policy: Policy, endpoint: str | None, token: str | None) -> Scanner:
    from adapterscan.fetch.source import HubOptions
    from adapterscan.pipeline import ScanOptions, scan

    options = ScanOptions(hub=HubOptions(endpoint=endpoint, token=token))

    def scanner(job: Job) -> ScanReport:
        return scan(f"hf://{job.repo}@{job.revision}", options=options, policy=policy)

    return scanner


def make_signer(key_path: Path, policy: Policy) -> Signer:
    """Load the key once, at start-up: a bad key stops the service before it accepts jobs."""
    import json

    from adapterscan.provenance.api import attest
    from adapterscan.provenance.keys import load_private_key

    key = load_private_key(key_path)

    def signer(report: ScanReport) -> str:
        return json.dumps(attest(report, key, policy=policy))

    return signer


def make_notifier(url: str) -> Notifier:
    import httpx

    def notify(event: dict[str, object]) -> None:
        httpx.post(url, json=event, timeout=5.0).raise_for_status()

    return notify
