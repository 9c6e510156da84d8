"""Errors that explain themselves: every error names what failed and what to do about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapterscan.report import ScanReport


class AdapterScanError(Exception):
    """Base of every error adapterscan raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """A human-readable explanation, with a hint when one is known."""
        text = f"{type(self).__name__}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(AdapterScanError):
    """The caller asked for something that cannot be done (bad source, bad option)."""


class FetchError(AdapterScanError):
    """The source could not be fetched or pinned."""


class RuleError(AdapterScanError):
    """The rule set or a policy file is invalid."""


class PolicyError(RuleError):
    """A policy file is invalid."""


class AnalysisError(AdapterScanError):
    """An analyzer could not finish on a file (recorded as a stage error, never raised to users)."""


class ProbeError(AdapterScanError):
    """The behavioral probe could not run (base model missing, adapter does not fit the base)."""


class SigningError(AdapterScanError):
    """An attestation could not be signed or verified."""


class AdapterRejected(AdapterScanError):
    """The adapter failed its scan or its attestation; carries the report that says why."""

    def __init__(self, message: str, report: ScanReport | None = None, *,
                 reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.report = report
        self.reasons = reasons

    def diagnostics(self) -> str:
        lines = [f"AdapterRejected: {self.message}"]
        lines.extend(f"  - {r}" for r in self.reasons)
        return "\n".join(lines)
