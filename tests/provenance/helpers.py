"""Builders for provenance tests: adapters, reports with real digests, signed bundles."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.findings import Confidence, Finding, Location, Severity
from adapterscan.hashing import sha256_file
from adapterscan.provenance.sign import sign_with_key
from adapterscan.provenance.statement import build_statement, statement_bytes
from adapterscan.report import Decision, FileRecord, ScanReport, Skip, Subject, Verdict
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet
from tests.factories import lora_tensors, write_adapter


@functools.cache
def rules() -> RuleSet:
    """Loaded once per test process: validating every rule file costs ~0.3 s."""
    return load_ruleset()


def make_adapter(folder: Path, seed: int = 0) -> Path:
    write_adapter(folder, tensors=lora_tensors(seed=seed))
    return folder


def report_for(folder: Path, decision: Decision = Decision.PASS, *, complete: bool = True,
               ruleset_digest: str | None = None) -> ScanReport:
    """A report over the folder's real bytes with a chosen verdict (signing is what is tested
    here; the analyzers' verdicts are tested by their own suites)."""
    files = tuple(FileRecord(p.relative_to(folder).as_posix(), p.stat().st_size, sha256_file(p))
                  for p in sorted(folder.rglob("*")) if p.is_file())
    findings: tuple[Finding, ...] = ()
    if decision is not Decision.PASS:
        findings = (Finding("AS101", "sha256-mismatch", Severity.CRITICAL, Confidence.HIGH,
                            "example finding", Location(file=files[0].path)),)
    return ScanReport(
        subject=Subject(source=str(folder), kind="local", files=files),
        findings=findings, verdict=Verdict(decision, (f"verdict {decision.value}",)),
        tool_version="test", ruleset_digest=ruleset_digest or rules().digest,
        skipped=() if complete else (Skip(files[0].path, "not analysed"),),
        started_at=dt.datetime.now(dt.UTC).isoformat())


def signed(report: ScanReport, key: ec.EllipticCurvePrivateKey, *,
           now: dt.datetime | None = None) -> bytes:
    payload = statement_bytes(build_statement(report, now=now))
    return json.dumps(sign_with_key(payload, key)).encode()
