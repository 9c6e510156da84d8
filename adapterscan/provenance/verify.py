"""Verify an attestation against the bytes now: signature, subjects, verdict, rule set, age.

Every problem becomes a finding under an AS7xx rule and the policy turns them into a verdict, so
`adapterscan verify` states every reason and `--policy` tunes it like a scan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.errors import SigningError
from adapterscan.fetch.dispatch import make_fetcher
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.findings import Finding, JSONValue
from adapterscan.hashing import sha256_file
from adapterscan.policy.policy import Policy
from adapterscan.provenance.checks import (
    DIGEST_MISMATCH,
    EXPIRED,
    EXTRA_FILE,
    MISSING_FILE,
    SCAN_INCOMPLETE,
    SIGNATURE_INVALID,
    STALE_RULESET,
    STATEMENT_INVALID,
    VERDICT_FAIL,
    VERDICT_WARN,
)
from adapterscan.provenance.model_signing import SIG_NAME, check_model_sig
from adapterscan.provenance.statement import AttestedScan, parse_statement
from adapterscan.provenance.trust import Tree, TrustConfig, verify_signature
from adapterscan.report import Decision, Verdict
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.source import EntryType, FetchedSource, FetchLimits

CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class VerificationResult:
    findings: tuple[Finding, ...]
    verdict: Verdict
    attested: AttestedScan | None = None
    signer: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.verdict.decision is not Decision.FAIL


def check_attestation(data: bytes, tree: Tree, trust: TrustConfig, *,
                      policy: Policy | None = None, ruleset: RuleSet | None = None,
                      max_age_days: float | None = None,
                      now: dt.datetime | None = None) -> VerificationResult:
    """Check an attestation (bundle bytes) against `tree`. Raises UsageError only when no trust
    material fits; everything else is a finding."""
    pol = policy or Policy()
    rules = pol.apply_to(ruleset or load_ruleset())
    emit = Emitter(rules)
    try:
        payload, signer = verify_signature(data, trust)
    except SigningError as exc:
        emit.emit(SIGNATURE_INVALID, exc.message)
        return _result(emit, pol, None, None)
    try:
        attested = parse_statement(payload)
    except SigningError as exc:
        emit.emit(STATEMENT_INVALID, exc.message)
        return _result(emit, pol, None, signer)
    _compare_files(attested, tree, emit)
    _check_claims(attested, emit, pol, rules, max_age_days, now)
    return _result(emit, pol, attested, signer)


def _compare_files(attested: AttestedScan, tree: Tree, emit: Emitter) -> None:
    for name, want in sorted(attested.subjects.items()):
        got = tree.files.get(name)
        if got is None:
            emit.emit(MISSING_FILE, f"{name} is attested but not in the source now",
                      file=name, evidence={"attested_sha256": want})
        elif got != want:
            emit.emit(DIGEST_MISMATCH,
                      f"{name}: sha256 now differs from the attested one", file=name,
                      evidence={"attested_sha256": want, "actual_sha256": got})
    known = set(attested.subjects) | set(attested.unhashed)
    for name in sorted(set(tree.files) - known):
        emit.emit(EXTRA_FILE, f"{name} is in the source but not in the attestation",
                  file=name, evidence={"actual_sha256": tree.files[name]})
    for name in sorted(set(tree.others) - known):
        emit.emit(EXTRA_FILE,
                  f"{name} (a link or special entry) is in the source but not in the attestation",
                  file=name)


def _check_claims(attested: AttestedScan, emit: Emitter, pol: Policy, rules: RuleSet,
                  max_age_days: float | None, now: dt.datetime | None) -> None:
    reasons: dict[str, JSONValue] = {"reasons": list(attested.reasons[:20])}
    first = f" (first reason: {attested.reasons[0]})" if attested.reasons else ""
    if attested.decision == Decision.FAIL.value:
        emit.emit(VERDICT_FAIL, f"the attested scan rejected this adapter{first}",
                  evidence=reasons)
    elif attested.decision == Decision.WARN.value:
        emit.emit(VERDICT_WARN, f"the attested scan passed it with warnings{first}",
                  evidence=reasons)
    elif attested.decision != Decision.PASS.value:
        emit.emit(STATEMENT_INVALID,
                  f"unknown attested decision {attested.decision!r}")
    if not attested.complete:
        emit.emit(SCAN_INCOMPLETE,
                  "the attested scan did not analyse everything (it never counts as clean)")
    accepted = {rules.digest, *pol.min_ruleset_digests}
    if attested.ruleset_digest not in accepted:
        emit.emit(STALE_RULESET,
                  f"scanned under rule set {attested.ruleset_digest[:12]} (adapterscan "
                  f"{attested.scanner_version}); this policy accepts only "
                  + ", ".join(sorted(d[:12] for d in accepted)),
                  evidence={"attested": attested.ruleset_digest,
                            "accepted": list(sorted(accepted))})
    current = now or dt.datetime.now(dt.UTC)
    age = current - attested.attested_at
    limit = max_age_days if max_age_days is not None else pol.max_attestation_age_days
    if age < -CLOCK_SKEW:
        emit.emit(EXPIRED, f"attested in the future ({attested.attested_at})",
                  evidence={"attested_at": attested.attested_at.isoformat()})
    elif limit is not None and age > dt.timedelta(days=limit):
        emit.emit(EXPIRED,
                  f"attested {age.total_seconds() / 86400:.2f} days ago; the limit is "
                  f"{limit:g} days", evidence={"attested_at": attested.attested_at.isoformat(),
                                               "max_age_days": limit})


def _result(emit: Emitter, pol: Policy, attested: AttestedScan | None,
            signer: str | None) -> VerificationResult:
    verdict = pol.decide(emit.findings, emit.skipped, emit.errors)
    if not emit.findings:
        verdict = Verdict(Decision.PASS, (f"signed by {signer}; every file matches the "
                                          "attestation and every claim is acceptable",),
                          pol.name)
    return VerificationResult(findings=emit.findings, verdict=verdict, attested=attested,
                              signer=signer)


def hash_tree(src: FetchedSource) -> Tree:
    """Hash every regular file of a fetched source; Hub files not downloaded keep the sha256
    the Hub announced (already checked by the fetcher for downloaded files)."""
    files: dict[str, str] = {}
    others: list[str] = []
    for e in src.entries:
        if e.type is not EntryType.FILE:
            others.append(e.path)
        elif e.path in src.remote_only:
            if e.path in src.expected_sha256:
                files[e.path] = src.expected_sha256[e.path]
            else:
                others.append(e.path)
        else:
            try:
                files[e.path] = sha256_file(src.root / e.path)
            except OSError as exc:
                raise SigningError(f"{e.path}: cannot read: {exc.strerror}") from exc
    return Tree(root=src.root, files=files, others=tuple(others))


def fetch_source(source: str | Path, *, hub: HubOptions | None = None,
                 limits: FetchLimits | None = None,
                 ruleset: RuleSet | None = None) -> FetchedSource:
    """Fetch a folder or Hub repo. Keep the result alive while reading its files: a Hub
    fetch's folder is removed with the FetchedSource."""
    emit = Emitter(ruleset or load_ruleset())
    src = make_fetcher(str(source), hub=hub, limits=limits).fetch(emit)
    if emit.skipped:
        s = emit.skipped[0]
        raise SigningError(f"cannot list the whole source: {s.path}: {s.reason}")
    return src


def snapshot(source: str | Path, *, hub: HubOptions | None = None,
             limits: FetchLimits | None = None, ruleset: RuleSet | None = None) -> Tree:
    """Fetch (folder or Hub) and hash the source as it is now."""
    return hash_tree(fetch_source(source, hub=hub, limits=limits, ruleset=ruleset))


def verify_source(source: str | Path, data: bytes, trust: TrustConfig, *,
                  policy: Policy | None = None, ruleset: RuleSet | None = None,
                  hub: HubOptions | None = None, limits: FetchLimits | None = None,
                  max_age_days: float | None = None,
                  now: dt.datetime | None = None) -> VerificationResult:
    """`adapterscan verify`: the attestation against the source as it is now, plus any
    OpenSSF model-signing `model.sig` found in it."""
    rules = ruleset or load_ruleset()
    src = fetch_source(source, hub=hub, limits=limits, ruleset=rules)
    tree = hash_tree(src)
    result = check_attestation(data, tree, trust, policy=policy, ruleset=rules,
                               max_age_days=max_age_days, now=now)
    if SIG_NAME not in tree.files:
        return result
    pol = policy or Policy()
    emit = Emitter(pol.apply_to(rules))
    check_model_sig(tree, emit, trust)
    del src  # the fetched folder (a Hub download) may go now
    findings = result.findings + emit.findings
    verdict = result.verdict
    if emit.findings:
        verdict = pol.decide(findings)
        if verdict.decision is Decision.PASS:
            verdict = Verdict(Decision.PASS, result.verdict.reasons, pol.name)
    return VerificationResult(findings=findings, verdict=verdict, attested=result.attested,
                              signer=result.signer)
