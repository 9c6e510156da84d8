"""Human-readable report rendered with rich."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from adapterscan.findings import Severity
from adapterscan.report import Decision, ScanReport
from adapterscan.rules.model import RuleSet

_STYLE = {Severity.INFO: "dim", Severity.LOW: "cyan", Severity.MEDIUM: "yellow",
          Severity.HIGH: "red", Severity.CRITICAL: "bold red"}
_VERDICT = {Decision.PASS: "bold green", Decision.WARN: "bold yellow", Decision.FAIL: "bold red"}


class TextFormatter:
    def __init__(self, *, color: bool = False, width: int = 120) -> None:
        self.color = color
        self.width = width

    def format(self, report: ScanReport, ruleset: RuleSet) -> str:
        buf = io.StringIO()
        con = Console(file=buf, force_terminal=self.color, no_color=not self.color,
                      width=self.width, highlight=False)
        subj = report.subject
        rev = f" @ {subj.revision}" if subj.revision else ""
        con.print(f"[bold]adapterscan {report.tool_version}[/] scanned {subj.source}{rev} "
                  f"({len(subj.files)} files, {sum(f.size for f in subj.files):,} bytes)")
        if report.findings:
            table = Table(show_lines=False, expand=False)
            for col in ("rule", "severity", "conf.", "where", "message"):
                table.add_column(col, overflow="fold")
            ordered = sorted(report.findings, key=lambda f: (-f.severity.rank, f.rule_id))
            for f in ordered:
                table.add_row(f"{f.rule_id} {f.rule_name}",
                              f"[{_STYLE[f.severity]}]{f.severity.value}[/]",
                              f.confidence.value, f.location.describe(), f.message)
            con.print(table)
        else:
            con.print("no findings")
        for s in report.skipped:
            con.print(f"[yellow]not fully analysed[/]: {s.path}: {s.reason}")
        for e in report.errors:
            con.print(f"[red]stage error[/] ({e.stage}{', ' + e.path if e.path else ''}): "
                      f"{e.message}")
        v = report.verdict
        con.print(f"verdict: [{_VERDICT[v.decision]}]{v.decision.value.upper()}[/]"
                  + ("" if report.complete else " (scan incomplete)"))
        for reason in v.reasons[:20]:
            con.print(f"  - {reason}")
        if len(v.reasons) > 20:
            con.print(f"  ... and {len(v.reasons) - 20} more reasons (see --format json)")
        return buf.getvalue()
