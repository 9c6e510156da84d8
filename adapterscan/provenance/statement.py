"""The in-toto Statement v1 we sign: one subject per adapter file, our own scan predicate."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapterscan.errors import SigningError
from adapterscan.policy.policy import Policy
from adapterscan.report import ScanReport

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://adapterscan.dev/attestation/scan/v1"
SCANNER_ID = "https://adapterscan.dev/scanner"
MAX_STATEMENT_BYTES = 16 * 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _base_model(report: ScanReport) -> dict[str, Any] | None:
    """A resource descriptor for the base model the scan loaded: its commit and files when the
    report records them (`report.base`), else the name --base was given."""
    if report.base_model is None:
        return None
    base = report.base
    if base is None:
        return {"name": report.base_model}
    desc: dict[str, Any] = {"name": base.get("name") or report.base_model}
    sha, repo, endpoint = base.get("sha"), base.get("repo"), base.get("endpoint")
    if isinstance(sha, str) and sha:
        desc["digest"] = {"gitCommit": sha}
    if isinstance(repo, str) and isinstance(endpoint, str):
        desc["uri"] = f"{endpoint.rstrip('/')}/{repo}"
    files = base.get("files")
    desc["annotations"] = {
        "requested": base.get("requested"), "source": base.get("source"),
        "files": {str(f.get("path")): f.get("sha256") for f in files
                  if isinstance(f, dict)} if isinstance(files, list) else {}}
    return desc


def build_statement(report: ScanReport, *, policy: Policy | None = None,
                    now: dt.datetime | None = None) -> dict[str, Any]:
    """The statement for `report`. Files without a sha256 (links, unread files) are listed in
    the predicate as `unhashed` so that verification still sees them as part of the subject."""
    subj = report.subject
    subjects = [{"name": f.path, "digest": {"sha256": f.sha256}}
                for f in subj.files if f.sha256 is not None]
    if not subjects:
        raise SigningError("nothing to attest: the scan hashed no file")
    pol: dict[str, Any] = {"name": report.verdict.policy}
    if policy is not None and policy.source_digest:
        pol["digest"] = {"sha256": policy.source_digest}
    findings = [{
        "ruleId": f.rule_id, "ruleName": f.rule_name, "severity": f.severity.value,
        "confidence": f.confidence.value, "message": f.message,
        "location": {k: v for k, v in (("file", f.location.file), ("tensor", f.location.tensor),
                                       ("key", f.location.key), ("offset", f.location.offset))
                     if v is not None},
    } for f in report.findings]
    predicate = {
        "scanner": {"id": SCANNER_ID, "name": "adapterscan", "version": report.tool_version},
        "ruleset": {"digest": {"sha256": report.ruleset_digest}},
        "policy": pol,
        "adapter": {"source": subj.source, "kind": subj.kind, "repo": subj.repo,
                    "revision": subj.revision, "endpoint": subj.endpoint},
        "baseModel": _base_model(report),
        "unhashed": [{"name": f.path, "kind": f.kind} for f in subj.files if f.sha256 is None],
        "findings": findings,
        "verdict": {"decision": report.verdict.decision.value,
                    "reasons": list(report.verdict.reasons)},
        "complete": report.complete,
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
        "scanStartedAt": report.started_at,
        "attestedAt": (now or _utc_now()).isoformat(),
    }
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE,
            "predicate": predicate}


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """Deterministic JSON; verifiers parse the signed bytes, so any stable encoding works."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


@dataclass(frozen=True)
class AttestedScan:
    """What a verified statement claims, typed."""

    subjects: Mapping[str, str]  # file -> sha256
    unhashed: tuple[str, ...]
    decision: str
    reasons: tuple[str, ...]
    complete: bool
    ruleset_digest: str
    scanner_version: str
    attested_at: dt.datetime
    source: str
    raw: Mapping[str, Any]


def _dup_check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys would let two parsers read two different statements (a parser differential).
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise SigningError("statement JSON has duplicate keys")
    return dict(pairs)


def parse_statement(payload: bytes) -> AttestedScan:
    """Parse signed statement bytes; anything unexpected raises SigningError."""
    if len(payload) > MAX_STATEMENT_BYTES:
        raise SigningError("statement larger than 16 MiB")
    try:
        st = json.loads(payload.decode("utf-8"), object_pairs_hook=_dup_check)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SigningError(f"statement is not JSON: {type(exc).__name__}") from exc
    if not isinstance(st, dict) or st.get("_type") != STATEMENT_TYPE:
        raise SigningError("payload is not an in-toto Statement v1")
    if st.get("predicateType") != PREDICATE_TYPE:
        raise SigningError(f"predicateType {st.get('predicateType')!r} is not {PREDICATE_TYPE}")
    subjects: dict[str, str] = {}
    subj_list = st.get("subject")
    if not isinstance(subj_list, list) or not subj_list:
        raise SigningError("statement has no subject")
    for s in subj_list:
        name = s.get("name") if isinstance(s, dict) else None
        digest = s.get("digest") if isinstance(s, dict) else None
        sha = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(name, str) or not isinstance(sha, str) or not _HEX64.match(sha):
            raise SigningError("statement subject without a name and a sha256 digest")
        if name in subjects:
            raise SigningError(f"statement names subject {name!r} twice")
        subjects[name] = sha
    pred = st.get("predicate")
    if not isinstance(pred, dict):
        raise SigningError("statement has no predicate")
    try:
        verdict = pred["verdict"]
        attested_at = dt.datetime.fromisoformat(pred["attestedAt"])
        if attested_at.tzinfo is None:
            raise ValueError("attestedAt has no time zone")
        return AttestedScan(
            subjects=subjects,
            unhashed=tuple(str(u["name"]) for u in pred.get("unhashed", [])),
            decision=str(verdict["decision"]),
            reasons=tuple(str(r) for r in verdict.get("reasons", [])),
            complete=pred["complete"] is True,
            ruleset_digest=str(pred["ruleset"]["digest"]["sha256"]),
            scanner_version=str(pred["scanner"]["version"]),
            attested_at=attested_at,
            source=str(pred.get("adapter", {}).get("source", "")),
            raw=st,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SigningError(f"statement predicate is malformed: {exc!r}") from exc
