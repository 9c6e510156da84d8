"""The JSON report; its schema is docs/report.schema.json."""

from __future__ import annotations

from adapterscan.report import ScanReport
from adapterscan.rules.model import RuleSet


class JsonFormatter:
    def format(self, report: ScanReport, ruleset: RuleSet) -> str:
        return report.to_json(indent=2) + "\n"
