from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import sarif_pydantic

from adapterscan.exit_codes import ExitCode, exit_code_for
from adapterscan.findings import Confidence, Finding, Location, Severity
from adapterscan.policy.policy import Policy
from adapterscan.render.interface import OutputFormat, formatter_for
from adapterscan.report import FileRecord, ScanReport, Skip, Subject
from adapterscan.rules.loader import load_ruleset
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def _report(*, skipped: tuple[Skip, ...] = (), sev: Severity = Severity.CRITICAL) -> ScanReport:
    rs = load_ruleset()
    rule = rs.rules[0]
    findings = (Finding(rule.id, rule.name, sev, Confidence.HIGH, "bad bytes",
                        Location(file="adapter_model.safetensors", tensor="t", offset=8),
                        {"expected": "aa", "actual": "bb", "n": 3}),)
    subject = Subject("dir", "local", (FileRecord("adapter_model.safetensors", 10, "0" * 64,
                                                  "safetensors"),))
    return ScanReport(subject, findings, Policy().decide(findings, skipped), "0.1.0", rs.digest,
                      skipped=skipped, timings={"total": 0.1})


def test_json_report_validates_against_committed_schema() -> None:
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    doc = json.loads(formatter_for(OutputFormat.JSON).format(_report(), load_ruleset()))
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert doc["verdict"]["decision"] == "fail"


def test_sarif_is_valid_2_1_0_with_help_uri_and_security_severity() -> None:
    schema = json.loads((ROOT / "tests" / "render" / "sarif_subset.schema.json").read_text())
    rs = load_ruleset()
    text = formatter_for(OutputFormat.SARIF).format(_report(skipped=(Skip("x", "big"),)), rs)
    doc = json.loads(text)
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(doc)
    sarif_pydantic.Sarif.model_validate(doc)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert all(r["helpUri"].endswith(f"{r['id']}.md") for r in rules)
    res = run["results"][0]
    assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
    assert run["invocations"][0]["executionSuccessful"] is False


def test_text_report_names_rule_location_and_verdict() -> None:
    text = formatter_for(OutputFormat.TEXT).format(_report(), load_ruleset())
    assert "adapter_model.safetensors" in text and "FAIL" in text


def test_exit_codes() -> None:
    assert exit_code_for(_report()) is ExitCode.REJECT
    assert exit_code_for(_report(), exit_zero=True) is ExitCode.PASS
    incomplete = _report(skipped=(Skip("x", "big"),), sev=Severity.LOW)
    assert exit_code_for(incomplete) is ExitCode.INCOMPLETE
    assert exit_code_for(_report(skipped=(Skip("x", "big"),)), exit_zero=True) \
        is ExitCode.INCOMPLETE


def test_sarif_merge_gives_each_scan_its_category_and_repository_paths(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from adapterscan.cli.app import app

    monkeypatch.chdir(tmp_path)
    factories.write_adapter(tmp_path / "models" / "a b")
    (tmp_path / "models" / "a b" / "extra.pkl").write_bytes(b"\x80\x04N.")
    runner = CliRunner()
    res = runner.invoke(app, ["scan", "models/a b", "-f", "sarif", "-o", "one.sarif"])
    assert res.exit_code in (0, 1, 3), res.output
    res = runner.invoke(app, ["sarif", "merge", "--out", "all.sarif", "one.sarif", "one.sarif"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "all.sarif").read_text())
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 2
    assert doc["runs"][0]["automationDetails"] == {"id": "adapterscan/models/a b/"}
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for r in doc["runs"][0]["results"] for loc in r["locations"]}
    assert "models/a%20b/extra.pkl" in uris
    bad = runner.invoke(app, ["sarif", "merge", "--out", "x.sarif", "all.sarif", "nope.sarif"])
    assert bad.exit_code == 2 and "nope.sarif" in bad.output


def test_text_and_sarif_name_the_base_model_loaded() -> None:
    import dataclasses

    base = {"requested": "auto", "name": "acme/base", "source": "hub", "repo": "acme/base",
            "revision": None, "sha": "c" * 40, "endpoint": "http://127.0.0.1:1",
            "folder": "/x", "files": []}
    report = dataclasses.replace(_report(), base=base)
    rs = load_ruleset()
    text = formatter_for(OutputFormat.TEXT).format(report, rs)
    assert f"base model: acme/base @ {'c' * 40} (hub)" in text
    run = json.loads(formatter_for(OutputFormat.SARIF).format(report, rs))["runs"][0]
    assert run["properties"]["baseModel"] == {"name": "acme/base", "source": "hub",
                                              "repo": "acme/base", "sha": "c" * 40}
    sarif_pydantic.Sarif.model_validate(json.loads(
        formatter_for(OutputFormat.SARIF).format(report, rs)))
