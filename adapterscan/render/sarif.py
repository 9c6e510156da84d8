"""SARIF 2.1.0, with helpUri per rule and GitHub's security-severity property."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from adapterscan.findings import Confidence, Finding, Severity
from adapterscan.report import ScanReport
from adapterscan.rules.model import Rule, RuleSet

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

# GitHub maps security-severity to its levels: >=9 critical, >=7 high, >=4 medium, >0 low.
_SECURITY_SEVERITY = {Severity.INFO: "0.0", Severity.LOW: "3.0", Severity.MEDIUM: "5.5",
                      Severity.HIGH: "8.0", Severity.CRITICAL: "9.5"}
_LEVEL = {Severity.INFO: "note", Severity.LOW: "note", Severity.MEDIUM: "warning",
          Severity.HIGH: "error", Severity.CRITICAL: "error"}
_PRECISION = {Confidence.LOW: "low", Confidence.MEDIUM: "medium", Confidence.HIGH: "high"}


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.docs.what},
        "help": {"text": rule.docs.why, "markdown": f"{rule.docs.why}\n\n[{rule.id}]"
                 f"({rule.help_uri})"},
        "helpUri": rule.help_uri,
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {"security-severity": _SECURITY_SEVERITY[rule.severity],
                       "precision": _PRECISION[rule.confidence],
                       "tags": ["security", f"stage:{rule.stage}"]},
    }


def _uri(path: str | None) -> str:
    """A relative URI reference for a scanned path: names with spaces, '#', '?', ':', controls
    or undecodable bytes (kept as surrogate escapes) become percent-encoded original bytes."""
    if not path:
        return "."
    return quote(path.encode("utf-8", "surrogateescape"), safe="/")


def _result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    uri = _uri(f.location.file)
    logical = [{"name": f.location.tensor, "kind": "member"}] if f.location.tensor else []
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {
        "uri": uri, "uriBaseId": "SRCROOT"}}}
    if f.location.offset is not None:
        location["physicalLocation"]["region"] = {"byteOffset": f.location.offset}
    if logical:
        location["logicalLocations"] = logical
    return {
        "ruleId": f.rule_id,
        "ruleIndex": index[f.rule_id],
        "level": _LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [location],
        "properties": {"severity": f.severity.value, "confidence": f.confidence.value,
                       "evidence": dict(f.evidence)},
    }


class SarifFormatter:
    def format(self, report: ScanReport, ruleset: RuleSet) -> str:
        index = {r.id: i for i, r in enumerate(ruleset.rules)}
        notifications = [
            {"level": "error", "message": {"text": f"not fully analysed: {s.reason}"},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(s.path)}}}]}
            for s in report.skipped
        ] + [
            {"level": "error", "message": {"text": f"stage {e.stage} failed: {e.message}"}}
            for e in report.errors
        ]
        run = {
            "tool": {"driver": {
                "name": "adapterscan", "version": report.tool_version,
                "informationUri": "https://github.com/adapterscan/adapterscan",
                "rules": [_rule_descriptor(r) for r in ruleset.rules],
            }},
            "originalUriBaseIds": {"SRCROOT": {"description": {"text": report.subject.source}}},
            "invocations": [{"executionSuccessful": report.complete,
                             "toolExecutionNotifications": notifications}],
            "results": [_result(f, index) for f in report.findings],
            "properties": {"verdict": report.verdict.decision.value,
                           "revision": report.subject.revision,
                           "rulesetDigest": report.ruleset_digest,
                           # the base model loaded for the probe (the JSON report lists its files)
                           "baseModel": {k: report.base.get(k) for k in
                                         ("name", "source", "repo", "sha")}
                           if report.base else None},
        }
        doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
        return json.dumps(doc, indent=2, allow_nan=False) + "\n"
