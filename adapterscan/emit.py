"""The per-scan collector that turns an analyzer's observation into a Finding under its rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from adapterscan.findings import Evidence, Finding, JSONValue, Location, json_safe
from adapterscan.report import Skip, StageError
from adapterscan.rules.model import ParamValue, RuleSet

# A hostile file can trigger the same check thousands of times; keep the report bounded.
MAX_FINDINGS_PER_CHECK_AND_FILE = 20


class Emitter:
    """Collects findings, skips and stage errors for one scan. Not shared between scans."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._findings: list[Finding] = []
        self._skipped: list[Skip] = []
        self._errors: list[StageError] = []
        self._counts: dict[tuple[str, str | None], int] = {}

    def param(self, check: str, name: str) -> ParamValue:
        """A threshold for `check` from its rule (after policy overrides)."""
        return self.ruleset.by_check(check).params[name]

    def num(self, check: str, name: str) -> float:
        value = self.param(check, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"rule for {check}: param {name} must be a number, got {value!r}")
        return float(value)

    def emit(self, check: str, message: str, *, file: str | None = None,
             tensor: str | None = None, key: str | None = None, offset: int | None = None,
             evidence: Mapping[str, JSONValue] | None = None) -> None:
        rule = self.ruleset.by_check(check)
        count_key = (check, file)
        seen = self._counts.get(count_key, 0)
        self._counts[count_key] = seen + 1
        if seen == MAX_FINDINGS_PER_CHECK_AND_FILE:
            message = f"{message} (further {rule.id} findings in this file are suppressed)"
        elif seen > MAX_FINDINGS_PER_CHECK_AND_FILE:
            return
        ev: Evidence = {k: json_safe(v) for k, v in (evidence or {}).items()}
        self._findings.append(Finding(
            rule_id=rule.id, rule_name=rule.name, severity=rule.severity,
            confidence=rule.confidence, message=message,
            location=Location(file=file, tensor=tensor, key=key, offset=offset), evidence=ev))

    def skip(self, path: str, reason: str) -> None:
        self._skipped.append(Skip(path=path, reason=reason))

    def error(self, stage: str, message: str, path: str | None = None) -> None:
        self._errors.append(StageError(stage=stage, message=message, path=path))

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(self._findings)

    @property
    def skipped(self) -> tuple[Skip, ...]:
        return tuple(self._skipped)

    @property
    def errors(self) -> tuple[StageError, ...]:
        return tuple(self._errors)



@dataclass(frozen=True)
class _Observed:
    check: str | None  # None: a skip of `file` for the reason `message`
    message: str
    file: str | None = None
    tensor: str | None = None
    key: str | None = None
    offset: int | None = None
    evidence: Mapping[str, JSONValue] | None = None


class Recorder:
    """Findings and skips observed off the scan's main thread, replayed into its Emitter in the
    order they were observed, so a report never depends on thread timing."""

    def __init__(self) -> None:
        self._seen: list[_Observed] = []

    def emit(self, check: str, message: str, *, file: str | None = None,
             tensor: str | None = None, key: str | None = None, offset: int | None = None,
             evidence: Mapping[str, JSONValue] | None = None) -> None:
        self._seen.append(_Observed(check, message, file, tensor, key, offset, evidence))

    def skip(self, path: str, reason: str) -> None:
        self._seen.append(_Observed(None, reason, path))

    def replay(self, emit: Emitter) -> None:
        for o in self._seen:
            if o.check is None:
                emit.skip(o.file or ".", o.message)
            else:
                emit.emit(o.check, o.message, file=o.file, tensor=o.tensor, key=o.key,
                          offset=o.offset, evidence=o.evidence)
