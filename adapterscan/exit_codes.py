"""Exit codes: 0 pass, 1 policy rejects, 2 usage/config/internal error, 3 scan incomplete."""

from __future__ import annotations

import enum

from adapterscan.report import Decision, ScanReport


class ExitCode(enum.IntEnum):
    PASS = 0
    REJECT = 1
    ERROR = 2
    INCOMPLETE = 3


def exit_code_for(report: ScanReport, *, exit_zero: bool = False) -> ExitCode:
    """A rejection wins over incompleteness; `--exit-zero` changes only the rejection code."""
    if report.verdict.decision is Decision.FAIL and not exit_zero:
        return ExitCode.REJECT
    if not report.complete:
        return ExitCode.INCOMPLETE
    return ExitCode.PASS
