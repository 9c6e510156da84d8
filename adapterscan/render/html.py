"""One self-contained HTML page per scan: verdict and reasons, findings grouped by stage with rule
links, the base model loaded, plots (formats/html_charts.py) and the files scanned.

No script, no request: the page's Content-Security-Policy (a <meta>) is `default-src 'none'`
with the one <style> element allowed by its sha256, so inline style attributes, images, fonts
and anything fetched are refused by the browser, and charts are inline SVG drawn with
presentation attributes only. Every string from the report is shown through `visible()` (control
characters and bidi overrides as escapes) and HTML-escaped.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from adapterscan.findings import Finding
from adapterscan.render.html_charts import Chart, charts
from adapterscan.render.svg import escaped
from adapterscan.report import ScanReport
from adapterscan.rules.model import Rule, RuleSet

STAGES = ("fetch", "static", "probe", "provenance", "internal")
MAX_EVIDENCE_CHARS = 4000
CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border-bottom:1px solid #e3e3e3;padding:.3rem .4rem;text-align:left;vertical-align:top}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5rem;max-height:20rem;overflow:auto}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:.3rem;color:#fff;font-weight:bold}
.pass{background:#1e8449}.warn{background:#b9770e}.fail{background:#c0392b}
.sev{font-weight:bold}.critical,.high{color:#c0392b}.medium{color:#b9770e}.low{color:#2e86c1}
.info{color:#777}.incomplete{color:#c0392b;font-weight:bold}.muted{color:#777}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555;max-width:40rem}
svg.chart{max-width:100%;height:auto;border:1px solid #eee}
ul.legend{list-style:none;padding:0;font-size:.85rem}
""".strip()
CSP = ("default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; font-src 'none'; "
       "base-uri 'none'; form-action 'none'")


def content_security_policy() -> str:
    digest = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    return CSP.replace("{hash}", digest)


class HtmlFormatter:
    def format(self, report: ScanReport, ruleset: RuleSet) -> str:
        rules = {r.id: r for r in ruleset.rules}
        v = report.verdict
        subj = report.subject
        rev = f" @ {subj.revision}" if subj.revision else ""
        parts = [
            "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy()}">',
            '<meta name="referrer" content="no-referrer">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>adapterscan: {escaped(subj.source)} — {v.decision.value}</title>",
            f"<style>{CSS}</style></head><body>",
            f"<h1>adapterscan report: <code>{escaped(subj.source + rev)}</code></h1>",
            f'<p><span class="verdict {v.decision.value}">{v.decision.value.upper()}</span> '
            + ("" if report.complete else '<span class="incomplete">scan incomplete: '
               "something was not analysed (exit 3)</span>") + "</p>",
            _reasons(v.reasons),
            f'<p class="muted">adapterscan {escaped(report.tool_version)}, started '
            f"{escaped(report.started_at)}, policy {escaped(v.policy)}, rule set "
            f"<code>{escaped(report.ruleset_digest[:16])}</code>; {len(subj.files)} files, "
            f"{sum(f.size for f in subj.files):,} bytes</p>",
            _findings(report.findings, rules),
            _incomplete(report),
            _base(report.base),
            "<h2>Plots</h2>",
            *(_figure(c) for c in charts(report.results, report.findings)),
            _files(report),
            "</body></html>",
        ]
        return "\n".join(p for p in parts if p) + "\n"


def _reasons(reasons: tuple[str, ...]) -> str:
    if not reasons:
        return ""
    return "<ul>" + "".join(f"<li>{escaped(r)}</li>" for r in reasons) + "</ul>"


def _findings(findings: tuple[Finding, ...], rules: Mapping[str, Rule]) -> str:
    out = ["<h2>Findings</h2>"]
    if not findings:
        return out[0] + "<p>No findings.</p>"
    by_stage: dict[str, list[Finding]] = {}
    for f in findings:
        rule = rules.get(f.rule_id)
        by_stage.setdefault(rule.stage if rule else "other", []).append(f)
    for stage in [*STAGES, *sorted(set(by_stage) - set(STAGES))]:
        items = sorted(by_stage.get(stage, []), key=lambda f: (-f.severity.rank, f.rule_id))
        if not items:
            continue
        out.append(f"<h3>{escaped(stage)} ({len(items)})</h3><table><tr><th>rule</th>"
                   "<th>severity</th><th>where</th><th>message</th></tr>")
        for f in items:
            rule = rules.get(f.rule_id)
            name = f"{escaped(f.rule_id)} {escaped(f.rule_name)}"
            link = (f'<a href="{escaped(rule.help_uri)}" rel="noreferrer noopener">{name}</a>'
                    if rule else name)
            evidence = json.dumps(dict(f.evidence), indent=1, ensure_ascii=False,
                                  default=str)
            if len(evidence) > MAX_EVIDENCE_CHARS:
                evidence = evidence[:MAX_EVIDENCE_CHARS] + "\n… (see --format json)"
            out.append(
                f"<tr><td>{link}</td><td class=\"sev {f.severity.value}\">{f.severity.value}"
                f" <span class=\"muted\">({f.confidence.value} conf.)</span></td>"
                f"<td><code>{escaped(f.location.describe())}</code></td><td>{escaped(f.message)}"
                f"<details><summary>evidence</summary><pre>{escaped(evidence)}</pre></details>"
                "</td></tr>")
        out.append("</table>")
    return "\n".join(out)


def _incomplete(report: ScanReport) -> str:
    if report.complete:
        return ""
    rows = [f"<li>not analysed: <code>{escaped(s.path)}</code>: {escaped(s.reason)}</li>"
            for s in report.skipped]
    rows += [f"<li>stage <b>{escaped(e.stage)}</b> failed"
             + (f" on <code>{escaped(e.path)}</code>" if e.path else "")
             + f": {escaped(e.message)}</li>"
             for e in report.errors]
    return "<h2>Not analysed</h2><ul>" + "".join(rows) + "</ul>"


def _base(base: Mapping[str, Any] | None) -> str:
    if not base:
        return ""
    fields = ("requested", "name", "source", "repo", "revision", "sha", "endpoint", "folder")
    rows = "".join(f"<tr><th>{k}</th><td><code>{escaped(base.get(k))}</code></td></tr>"
                   for k in fields if base.get(k) is not None)
    files = base.get("files") if isinstance(base.get("files"), list) else []
    listed = "".join(
        f"<tr><td><code>{escaped(f.get('path'))}</code></td><td>{escaped(f.get('size'))}</td>"
        f"<td><code>{escaped(f.get('sha256'))}</code></td><td>{escaped(f.get('checked_against'))}</td>"
        "</tr>" for f in (files or []) if isinstance(f, dict))
    return (f"<h2>Base model loaded</h2><table>{rows}</table><table><tr><th>file</th>"
            f"<th>bytes</th><th>sha256</th><th>checked against</th></tr>{listed}</table>")


def _figure(chart: Chart) -> str:
    if chart.svg is None:
        return (f"<figure><figcaption><b>{escaped(chart.title)}</b>: not measured "
                f"({escaped(chart.note)})</figcaption></figure>")
    legend = "".join(
        f'<li><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" '
        f'fill="{escaped(colour)}"/></svg> {escaped(label)}</li>' for colour, label in chart.legend)
    return (f"<figure>{chart.svg}<figcaption>{escaped(chart.note)}</figcaption>"
            + (f'<ul class="legend">{legend}</ul>' if legend else "") + "</figure>")


def _files(report: ScanReport) -> str:
    rows = "".join(
        f"<tr><td><code>{escaped(f.path)}</code></td><td>{escaped(f.kind)}</td><td>{f.size:,}</td>"
        f"<td><code>{escaped(f.sha256 or 'not hashed')}</code></td></tr>"
        for f in report.subject.files)
    return ("<h2>Files</h2><table><tr><th>path</th><th>kind</th><th>bytes</th><th>sha256</th>"
            f"</tr>{rows}</table>")
