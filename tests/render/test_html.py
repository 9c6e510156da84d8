"""The HTML report: self-contained, strict CSP, everything escaped, plots drawn from the report's
own numbers."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app
from adapterscan.findings import Confidence, Finding, Location, Severity
from adapterscan.render.html import HtmlFormatter
from adapterscan.render.svg import BOTTOM, HEIGHT, TOP
from adapterscan.report import Decision, FileRecord, ScanReport, Subject, Verdict
from adapterscan.rules.loader import load_ruleset
from tests import factories

EVIL = '<script>alert(1)</script>"\'><img src=x onerror=alert(2)>\u202e\x1b[31m'
PLOT_H = HEIGHT - TOP - BOTTOM


def rates(base: float, merged: float, n: int = 40) -> dict[str, Any]:
    return {"n": n, "base_rate": base, "merged_rate": merged,
            "base_ci95": [max(base - 0.1, 0), min(base + 0.1, 1)],
            "merged_ci95": [max(merged - 0.1, 0), min(merged + 0.1, 1)], "drift": merged - base}


def module(layer: int, kind: str, fro: float) -> dict[str, Any]:
    return {"module": f"base_model.model.model.layers.{layer}.self_attn.{kind}{EVIL}",
            "type": kind, "layer": layer, "fro": fro,
            "top_singular_values": [fro * 0.9, fro * 0.3, fro * 0.1]}


def report(*, probe: bool = True) -> ScanReport:
    results: dict[str, Any] = {"weights": {"modules": [
        module(0, "q_proj", 3.0), module(0, "v_proj", 1.0), module(1, "q_proj", 2.0)]}}
    if probe:
        results["probe"] = {
            "signals": {"harmful_refusal_judge": rates(0.9, 0.2),
                        "benign_refusal_judge": rates(0.1, 0.15),
                        "over_refusal_judge": rates(0.5, 0.5)},
            "triggers": {"searched": True, "confirmed": [
                {"trigger": EVIL, "position": "prefix", "merged": rates(1.0, 0.25, 32),
                 "base": rates(1.0, 0.95, 32), "finding": True},
                {"trigger": "decoy", "position": "suffix", "merged": rates(1.0, 0.9, 32),
                 "base": rates(1.0, 1.0, 32), "finding": False}]}}
    finding = Finding("AS605", "backdoor-trigger", Severity.CRITICAL, Confidence.HIGH,
                      f"trigger {EVIL!r} switches refusal off", Location(key=EVIL),
                      {"trigger": EVIL, "position": "prefix"})
    static = Finding("AS330", "unpinned-base-revision", Severity.INFO, Confidence.HIGH,
                     "not pinned", Location(file=f"adapter_config.json{EVIL}"), {})
    return ScanReport(
        subject=Subject(source=f"/tmp/{EVIL}", kind="local",
                        files=(FileRecord(f"a{EVIL}.safetensors", 10, "0" * 64, "safetensors"),)),
        findings=(finding, static), verdict=Verdict(Decision.FAIL, (f"AS605 {EVIL}",)),
        tool_version="0.0.0", ruleset_digest="f" * 64, results=results, base_model="auto",
        base={"requested": "auto", "name": EVIL, "source": "hub", "repo": "acme/base",
              "revision": None, "sha": "a" * 40, "endpoint": "http://127.0.0.1:1", "folder": "/x",
              "files": [{"path": "model.safetensors", "size": 1, "sha256": "b" * 64,
                         "checked_against": "hub-listing"}]})


def page(rep: ScanReport | None = None) -> str:
    return HtmlFormatter().format(rep or report(), load_ruleset())


def test_the_page_is_self_contained_under_a_strict_csp() -> None:
    html = page()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None
    policy = csp.group(1)
    assert "default-src 'none'" in policy and "unsafe" not in policy
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy  # the one style block, by its hash
    assert " style=" not in html  # inline style attributes would be refused
    assert not re.search(r"<(script|img|link|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"<[a-z][^>]*\ssrc=", html)
    # The only URLs are the rule pages the findings link to (navigation, never loaded).
    urls = set(re.findall(r"https?://[^\s\"'<]+", html)) - {"http://www.w3.org/2000/svg"}
    assert urls and all(u.startswith("https://github.com/adapterscan/adapterscan/blob/main/"
                                     "docs/rules/") or u.startswith("http://127.0.0.1:1")
                        for u in urls)


def test_everything_from_the_report_is_escaped() -> None:
    html = page()
    assert "<script>alert" not in html and "onerror=alert(2)>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\u202e" not in html and "\x1b" not in html
    assert "\\u202e" in html and "\\x1b" in html


def test_findings_are_grouped_by_stage_with_rule_links() -> None:
    html = page()
    static, probe = html.index("<h3>static (1)</h3>"), html.index("<h3>probe (1)</h3>")
    assert static < probe
    assert ('href="https://github.com/adapterscan/adapterscan/blob/main/docs/rules/AS605.md"'
            in html)
    assert '<span class="verdict fail">FAIL</span>' in html


def bars(svg: str) -> list[tuple[float, str]]:
    """(height as a share of the plot, tooltip) of every bar in one chart."""
    return [(float(h) / PLOT_H, title) for h, title in
            re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"[^>]*><title>([^<]*)</title>',
                       svg)]


def charts(html: str) -> list[str]:
    return re.findall(r"<svg xmlns=[^>]*class=\"chart\".*?</svg>", html, re.S)


def test_plots_are_drawn_from_the_reports_numbers() -> None:
    energy, spectra, refusal, triggers = charts(page())
    # Layer energy: layer 0 = 3² + 1² = 10 (stacked), layer 1 = 2² = 4; the axis tops at 11.
    heights = {t: h for h, t in bars(energy)}
    assert heights["layer 0 — q_proj: 9"] == pytest.approx(9 / 11, abs=0.01)
    assert heights["layer 1 — q_proj: 4"] == pytest.approx(4 / 11, abs=0.01)
    assert spectra.count('<polyline class="line"') == 3
    # Refusal: harmful base 90% / merged 20%, benign 10% / 15%, on a 0–100% axis.
    got = [(round(h, 2), t) for h, t in bars(refusal)]
    assert (0.9, "harmful (n=40) — base: 90.0%") in got
    assert (0.2, "harmful (n=40) — merged: 20.0%") in got
    assert (0.15, "benign (n=40) — merged: 15.0%") in got
    assert not any(t.startswith("over") for _, t in got)  # the aggregate is not a suite
    # Triggers: without / with / base-with per string; the confirmed one first.
    shares = [round(h, 2) for h, _ in bars(triggers)]
    assert shares == [1.0, 0.25, 0.95, 1.0, 0.9, 1.0]
    assert "✔ " in triggers and "&lt;script&gt;" in triggers


def test_missing_measurements_say_so() -> None:
    html = page(report(probe=False))
    assert len(charts(html)) == 2  # weights only
    assert "not measured (the behavioral probe did not run in this scan (no --base))" in html
    assert "not measured (no trigger search in this scan)" in html


def test_cli_writes_an_html_report(tmp_path: Path) -> None:
    adapter = factories.write_adapter(tmp_path / "adapter")
    out = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["scan", str(adapter), "--format", "html", "-o", str(out)])
    assert res.exit_code in (0, 1), res.output
    html = out.read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "Update energy per layer" in html and "<h2>Files</h2>" in html
