"""Human-readable report rendered with rich."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from adapterscan.findings import Severity
from adapterscan.report import Decision, ScanReport
from adapterscan.rules.model import RuleSet

_STYLE = {Severity.INFO: "dim", Severity.LOW: "cyan", Severity.MEDIUM: "yellow",
          Severity.HIGH: "red", Severity.CRITICAL: "bold red"}
# Names and messages come from the scanned files: C0/C1 controls (terminal escapes), lone
# surrogates (undecodable file names) and bidi overrides are shown escaped, and rich markup in
# them is never interpreted.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """Untrusted text with controls, lone surrogates and bidi overrides shown as escapes."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                       else f"\\u{ord(m[0]):04x}", text)


def safe_text(text: str) -> str:
    """Untrusted text made inert for a rich console: escaped controls, no markup."""
    return escape(visible(text))


def base_line(base: Mapping[str, object]) -> str:
    """`acme/base @ <sha> (hub)`: the base a scan loaded, in one line."""
    sha = f" @ {base['sha']}" if base.get("sha") else ""
    return f"{base.get('name')}{sha} ({base.get('source')})"


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
        con.print(f"[bold]adapterscan {report.tool_version}[/] scanned "
                  f"{safe_text(subj.source + rev)} "
                  f"({len(subj.files)} files, {sum(f.size for f in subj.files):,} bytes)")
        if report.base:
            con.print(f"base model: {safe_text(base_line(report.base))}")
        if report.findings:
            table = Table(show_lines=False, expand=False)
            for col in ("rule", "severity", "conf.", "where", "message"):
                table.add_column(col, overflow="fold")
            ordered = sorted(report.findings, key=lambda f: (-f.severity.rank, f.rule_id))
            for f in ordered:
                table.add_row(f"{f.rule_id} {f.rule_name}",
                              f"[{_STYLE[f.severity]}]{f.severity.value}[/]",
                              f.confidence.value, safe_text(f.location.describe()),
                              safe_text(f.message))
            con.print(table)
        else:
            con.print("no findings")
        for s in report.skipped:
            con.print(f"[yellow]not fully analysed[/]: {safe_text(s.path)}: {safe_text(s.reason)}")
        for e in report.errors:
            where = f", {e.path}" if e.path else ""
            con.print(f"[red]stage error[/] ({safe_text(e.stage + where)}): {safe_text(e.message)}")
        v = report.verdict
        con.print(f"verdict: [{_VERDICT[v.decision]}]{v.decision.value.upper()}[/]"
                  + ("" if report.complete else " (scan incomplete)"))
        for reason in v.reasons[:20]:
            con.print(f"  - {safe_text(reason)}")
        if len(v.reasons) > 20:
            con.print(f"  ... and {len(v.reasons) - 20} more reasons (see --format json)")
        return buf.getvalue()
