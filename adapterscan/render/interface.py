"""Report formatters: a report (and the rule set for SARIF) in, text out."""

from __future__ import annotations

import enum
from typing import Protocol

from adapterscan.report import ScanReport
from adapterscan.rules.model import RuleSet


class OutputFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    HTML = "html"


class Formatter(Protocol):
    def format(self, report: ScanReport, ruleset: RuleSet) -> str: ...


def formatter_for(fmt: OutputFormat, *, color: bool = False) -> Formatter:
    from adapterscan.render.html import HtmlFormatter
    from adapterscan.render.json import JsonFormatter
    from adapterscan.render.sarif import SarifFormatter
    from adapterscan.render.text import TextFormatter

    if fmt is OutputFormat.JSON:
        return JsonFormatter()
    if fmt is OutputFormat.SARIF:
        return SarifFormatter()
    if fmt is OutputFormat.HTML:
        return HtmlFormatter()
    return TextFormatter(color=color)
