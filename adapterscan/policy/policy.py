"""Policies turn findings into a verdict. The default is documented in docs/policy.md."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapterscan.errors import PolicyError
from adapterscan.findings import Confidence, Finding, Severity
from adapterscan.report import Decision, Skip, StageError, Verdict
from adapterscan.rules.model import ParamValue, RuleSet


@dataclass(frozen=True)
class Policy:
    """Thresholds and rule lists.

    A finding rejects when its rule is denied, or when its severity >= `fail_on` and its
    confidence >= `min_confidence`; it warns when severity >= `warn_on`. Allowed rules are ignored.
    An incomplete scan never passes: it is at least WARN, and the CLI exits 3 for it.
    """

    name: str = "default"
    fail_on: Severity = Severity.HIGH
    warn_on: Severity = Severity.MEDIUM
    min_confidence: Confidence = Confidence.LOW
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    params: Mapping[str, Mapping[str, ParamValue]] = field(default_factory=dict)
    # Provenance limits used by `adapterscan verify`.
    max_attestation_age_days: float | None = None
    min_ruleset_digests: frozenset[str] = frozenset()
    source_digest: str = ""

    def apply_to(self, ruleset: RuleSet) -> RuleSet:
        unknown = [r for r in (*self.allow, *self.deny, *self.params) if not ruleset.has_id(r)]
        if unknown:
            raise PolicyError(f"policy {self.name!r} names unknown rules: {', '.join(unknown)}")
        return ruleset.with_params(self.params)

    def decide(self, findings: tuple[Finding, ...], skipped: tuple[Skip, ...] = (),
               errors: tuple[StageError, ...] = ()) -> Verdict:
        fail: list[str] = []
        warn: list[str] = []
        for f in findings:
            if f.rule_id in self.allow:
                continue
            where = f.location.describe()
            if f.rule_id in self.deny:
                fail.append(f"{f.rule_id} {f.rule_name} is denied by policy ({where})")
            elif f.severity >= self.fail_on and f.confidence >= self.min_confidence:
                fail.append(f"{f.rule_id} {f.rule_name} [{f.severity.value}] at {where}: "
                            f"{f.message}")
            elif f.severity >= self.warn_on:
                warn.append(f"{f.rule_id} {f.rule_name} [{f.severity.value}] at {where}")
        incomplete = [f"not fully analysed: {s.path}: {s.reason}" for s in skipped]
        incomplete += [f"stage {e.stage} failed" + (f" on {e.path}" if e.path else "")
                       + f": {e.message}" for e in errors]
        if fail:
            return Verdict(Decision.FAIL, tuple(fail + incomplete), self.name)
        if warn or incomplete:
            return Verdict(Decision.WARN, tuple(incomplete + warn), self.name)
        return Verdict(Decision.PASS, ("no finding reached the policy's thresholds",), self.name)


def _names(table: Mapping[str, Any], key: str, path: Path) -> frozenset[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{path}: {key} must be a list of rule ids")
    return frozenset(value)


_KEYS = {"name", "fail_on", "warn_on", "min_confidence", "allow", "deny", "params",
         "max_attestation_age_days", "min_ruleset_digests"}


def load_policy(path: Path) -> Policy:
    """Read a policy TOML file; every key is optional (see docs/policy.md)."""
    import tomllib  # ~15 ms of regex compilation: only when a policy file is given

    try:
        raw = path.read_bytes()
        table = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy: {exc.strerror}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(table) - _KEYS
    if unknown:
        raise PolicyError(f"{path}: unknown policy keys: {', '.join(sorted(unknown))}")
    try:
        fail_on = Severity.parse(table.get("fail_on", "high"))
        warn_on = Severity.parse(table.get("warn_on", "medium"))
        min_conf = Confidence.parse(table.get("min_confidence", "low"))
    except (ValueError, AttributeError) as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    params = table.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise PolicyError(f"{path}: params must be tables keyed by rule id, e.g. [params.AS501]")
    age = table.get("max_attestation_age_days")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int | float)):
        raise PolicyError(f"{path}: max_attestation_age_days must be a number")
    return Policy(
        name=str(table.get("name", path.stem)), fail_on=fail_on,
        warn_on=warn_on, min_confidence=min_conf,
        allow=_names(table, "allow", path), deny=_names(table, "deny", path),
        params=params, max_attestation_age_days=age,
        min_ruleset_digests=_names(table, "min_ruleset_digests", path),
        source_digest=hashlib.sha256(raw).hexdigest(),
    )
