from __future__ import annotations

from pathlib import Path

import pytest

from adapterscan.errors import PolicyError
from adapterscan.findings import Confidence, Finding, Location, Severity
from adapterscan.policy.policy import Policy, load_policy
from adapterscan.report import Decision, Skip, StageError


def _f(rule: str, sev: Severity, conf: Confidence = Confidence.HIGH) -> Finding:
    return Finding(rule, "name", sev, conf, "msg", Location(file="a"))


def test_default_policy_thresholds() -> None:
    p = Policy()
    assert p.decide(()).decision is Decision.PASS
    assert p.decide((_f("AS201", Severity.LOW),)).decision is Decision.PASS
    assert p.decide((_f("AS201", Severity.MEDIUM),)).decision is Decision.WARN
    assert p.decide((_f("AS201", Severity.HIGH),)).decision is Decision.FAIL
    assert p.decide((_f("AS201", Severity.CRITICAL),)).decision is Decision.FAIL


def test_incomplete_scan_never_passes() -> None:
    v = Policy().decide((), (Skip("x.bin", "too big"),))
    assert v.decision is Decision.WARN and "x.bin" in v.reasons[0]
    v = Policy().decide((), (), (StageError("pickle", "boom", "y"),))
    assert v.decision is Decision.WARN


def test_allow_deny_and_confidence() -> None:
    p = Policy(allow=frozenset({"AS201"}), deny=frozenset({"AS202"}),
               min_confidence=Confidence.MEDIUM)
    assert p.decide((_f("AS201", Severity.CRITICAL),)).decision is Decision.PASS
    assert p.decide((_f("AS202", Severity.INFO),)).decision is Decision.FAIL
    assert p.decide((_f("AS203", Severity.HIGH, Confidence.LOW),)).decision is Decision.WARN


def test_load_policy_file(tmp_path: Path) -> None:
    f = tmp_path / "strict.toml"
    f.write_text('fail_on = "medium"\ndeny = ["AS101"]\n[params.AS101]\nx = 1\n')
    p = load_policy(f)
    assert p.fail_on is Severity.MEDIUM and p.deny == {"AS101"} and p.params["AS101"]["x"] == 1
    assert p.decide((_f("AS201", Severity.MEDIUM),)).decision is Decision.FAIL


@pytest.mark.parametrize("text, match", [
    ('fail_on = "apocalyptic"', "unknown severity"),
    ('fial_on = "high"', "unknown policy keys: fial_on"),
    ('deny = "AS101"', "deny must be a list"),
    ("params = 3", "params must be tables"),
    ("not toml [", "not valid TOML"),
])
def test_bad_policy_files_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(PolicyError, match=match):
        load_policy(f)


def test_policy_naming_unknown_rule_is_an_error() -> None:
    from adapterscan.rules.loader import load_ruleset

    with pytest.raises(PolicyError, match="unknown rules: AS999"):
        Policy(deny=frozenset({"AS999"})).apply_to(load_ruleset())
