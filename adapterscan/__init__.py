"""adapterscan: decide whether a LoRA/PEFT adapter is safe to load.

Public API: `scan()`, `ScanReport`, `Finding`, `Severity`, `Confidence`, `Policy`,
`ServiceAttestation` (where `load_adapter` fetches a verdict from) and the errors.
`load_adapter()` (the pre-load guard) is imported lazily because it needs torch and peft.
"""

from __future__ import annotations

from typing import Any

from adapterscan._version import __version__
from adapterscan.errors import (
    AdapterRejected,
    AdapterScanError,
    FetchError,
    PolicyError,
    ProbeError,
    RuleError,
    SigningError,
    UsageError,
)
from adapterscan.findings import Confidence, Finding, Location, Severity
from adapterscan.integrations.service_client import ServiceAttestation
from adapterscan.pipeline import ScanOptions, scan
from adapterscan.policy.policy import Policy, load_policy
from adapterscan.report import Decision, ScanReport

__all__ = [
    "AdapterRejected", "AdapterScanError", "Confidence", "Decision", "FetchError", "Finding",
    "Location", "Policy", "PolicyError", "ProbeError", "RuleError", "ScanOptions", "ScanReport",
    "ServiceAttestation", "Severity", "SigningError", "UsageError", "__version__", "load_adapter",
    "load_policy", "scan",
]


def __getattr__(name: str) -> Any:
    if name == "load_adapter":
        from adapterscan.integrations.preload import load_adapter

        return load_adapter
    raise AttributeError(name)
