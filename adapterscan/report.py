"""The scan report: the pinned subject, findings, skipped items, stage errors, verdict, timings."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapterscan.findings import Finding, JSONValue, json_safe

SCHEMA_VERSION = "1.1"  # 1.1: `base`, the base model loaded


@dataclass(frozen=True)
class FileRecord:
    """One file of the subject. `kind` is the inventory class; sha256 is None when not hashed."""

    path: str
    size: int
    sha256: str | None
    kind: str = "unknown"


@dataclass(frozen=True)
class Subject:
    """What was scanned, pinned: source string, resolved revision (commit sha) and every file."""

    source: str
    kind: str  # "local" or "hub"
    files: tuple[FileRecord, ...]
    revision: str | None = None
    endpoint: str | None = None
    repo: str | None = None

    def digests(self) -> dict[str, str]:
        return {f.path: f.sha256 for f in self.files if f.sha256 is not None}


@dataclass(frozen=True)
class Skip:
    """Something not analysed (fully or at all). Any skip makes the scan incomplete."""

    path: str
    reason: str


@dataclass(frozen=True)
class StageError:
    """An analyzer or stage that failed; the scan is incomplete."""

    stage: str
    message: str
    path: str | None = None


class Decision(enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reasons: tuple[str, ...]
    policy: str = "default"


@dataclass(frozen=True)
class ScanReport:
    subject: Subject
    findings: tuple[Finding, ...]
    verdict: Verdict
    tool_version: str
    ruleset_digest: str
    skipped: tuple[Skip, ...] = ()
    errors: tuple[StageError, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    # Stage results that are not findings (weight statistics, probe metrics), keyed by stage.
    results: Mapping[str, JSONValue] = field(default_factory=dict)
    base_model: str | None = None  # what --base asked for
    # The base model loaded (fetch/base_model.py ResolvedBase.to_json): source, commit, files.
    base: Mapping[str, JSONValue] | None = None
    started_at: str = ""

    @property
    def complete(self) -> bool:
        """False when any file or stage was not fully analysed: such a scan never passes clean."""
        return not self.skipped and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "adapterscan", "version": self.tool_version},
            "ruleset_digest": self.ruleset_digest,
            "started_at": self.started_at,
            "subject": {
                "source": self.subject.source,
                "kind": self.subject.kind,
                "repo": self.subject.repo,
                "revision": self.subject.revision,
                "endpoint": self.subject.endpoint,
                "files": [
                    {"path": f.path, "size": f.size, "sha256": f.sha256, "kind": f.kind}
                    for f in self.subject.files
                ],
            },
            "base_model": self.base_model,
            "base": json_safe(dict(self.base)) if self.base is not None else None,
            "complete": self.complete,
            "verdict": {
                "decision": self.verdict.decision.value,
                "reasons": list(self.verdict.reasons),
                "policy": self.verdict.policy,
            },
            "findings": [finding_to_dict(f) for f in self.findings],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "errors": [{"stage": e.stage, "path": e.path, "message": e.message}
                       for e in self.errors],
            "results": json_safe(dict(self.results)),
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)


def finding_to_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "rule_name": f.rule_name,
        "severity": f.severity.value,
        "confidence": f.confidence.value,
        "message": f.message,
        "location": {"file": f.location.file, "tensor": f.location.tensor,
                     "key": f.location.key, "offset": f.location.offset},
        "evidence": dict(f.evidence),
    }
