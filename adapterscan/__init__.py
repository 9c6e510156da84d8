"""adapterscan: decide whether a LoRA/PEFT adapter is safe to load.

Public API: `scan()`, `ScanReport`, `Finding`, `Severity`, `Confidence`, `Policy`,
`ServiceAttestation` (where `load_adapter` fetches a verdict from) and the errors.
`load_adapter()` (the pre-load guard) is imported lazily because it needs torch and peft;
`scan`, `ScanOptions` and `ServiceAttestation` are imported on first use too, so that
`import adapterscan` (and the CLI's start) does not pay for numpy or an HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from adapterscan.policy.policy import Policy, load_policy
from adapterscan.report import Decision, ScanReport

if TYPE_CHECKING:
    from adapterscan.integrations.service_client import ServiceAttestation
    from adapterscan.pipeline import ScanOptions, scan

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
    if name in ("scan", "ScanOptions"):
        from adapterscan import pipeline

        return getattr(pipeline, name)
    if name == "ServiceAttestation":
        from adapterscan.integrations.service_client import ServiceAttestation

        return ServiceAttestation
    raise AttributeError(name)
