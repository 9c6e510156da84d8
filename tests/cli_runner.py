"""`adapterscan scan --format json` run in-process, its report checked against the schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

import adapterscan.cli.scan_cmd as scan_cmd
from adapterscan.cli.app import app
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet

ROOT = Path(__file__).resolve().parents[1]
Report = dict[str, Any]
Scan = Callable[..., tuple[int, Report]]


@lru_cache(maxsize=1)
def schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


@lru_cache(maxsize=1)
def _ruleset() -> RuleSet:
    return load_ruleset()


def make_cli(monkeypatch: pytest.MonkeyPatch) -> Scan:
    """Run `scan FOLDER --format json` in-process; the rule set is loaded once per session."""
    monkeypatch.setattr(scan_cmd, "load_ruleset", _ruleset)
    runner = CliRunner()

    def run(folder: Path | str, *extra: str) -> tuple[int, Report]:
        res = runner.invoke(app, ["scan", str(folder), "--format", "json", *extra])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise AssertionError(f"exception escaped the CLI: {res.exception!r}") from \
                res.exception
        assert "Traceback" not in res.output
        doc: Report = json.loads(res.stdout)
        schema_validator().validate(doc)
        return res.exit_code, doc

    return run


def rule_ids(doc: Report) -> set[str]:
    return {f["rule_id"] for f in doc["findings"]}
