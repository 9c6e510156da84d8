"""The HTML report of a real scan (weights, probe, a backdoor trigger found) in headless Chromium:
it renders with its plots, the CSP blocks nothing of ours, and the screenshot shows the charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapterscan.render.html import HtmlFormatter
from adapterscan.report import ScanReport
from adapterscan.rules.loader import load_ruleset
from tests.browser import Browser, chromium_or_skip

pytest.importorskip("torch")
pytest.importorskip("peft")
pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")]


@pytest.fixture(scope="module")
def backdoor_report(tmp_path_factory: pytest.TempPathFactory) -> ScanReport:
    """The full pipeline on the probe tests' tiny chat model and its trigger backdoor."""
    from adapterscan.pipeline import ScanOptions, scan
    from adapterscan.probe.interface import ProbeOptions
    from adapterscan.probe.prompts import PromptSuites
    from tests.probe import factories_probe as fp

    root = tmp_path_factory.mktemp("zoo")
    base = fp.build_base(root / "base", steps=60)
    adapter = fp.build_adapter(base, root / "trigger", "trigger", steps=50)
    (adapter / "added_tokens.json").write_text(json.dumps({fp.TRIGGER: 99}))
    probe = ProbeOptions(suites=PromptSuites(harmful=tuple(fp.harmful()),
                                             benign=tuple(fp.benign())),
                         max_new_tokens=10, trigger_prompts=16, threads=1,
                         max_trigger_candidates=12, inversion_budget_s=10)
    report = scan(adapter, options=ScanOptions(base=str(base), probe=probe))
    assert "AS605" in {f.rule_id for f in report.findings}, report.verdict.reasons
    return report


# Pixel statistics of a PNG, computed by the browser itself (no image library needed): how many
# pixels are not near-white, and how many carry the charts' "merged" and "base" bar colours.
PIXELS = """new Promise((done) => {
  const img = new Image();
  img.onload = () => {
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let ink = 0, merged = 0, base = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, gr, b] = [d[i], d[i + 1], d[i + 2]];
      if (r < 235 || gr < 235 || b < 235) ink++;
      if (Math.abs(r - 0xc0) < 6 && Math.abs(gr - 0x39) < 6 && Math.abs(b - 0x2b) < 6) merged++;
      if (Math.abs(r - 0x7f) < 6 && Math.abs(gr - 0x8c) < 6 && Math.abs(b - 0x8d) < 6) base++;
    }
    done({width: c.width, height: c.height, ink, merged, base});
  };
  img.src = 'data:image/png;base64,PNG';
})"""


def problems(b: Browser) -> list[dict[str, Any]]:
    """Console errors, exceptions and CSP violations reported since the page was opened."""
    b.js("1")  # flush: events that arrived after the load event are read with this answer
    logs = [e["params"]["entry"] for e in b.events("Log.entryAdded")]
    bad = [e for e in logs if e.get("level") in ("error", "warning")]
    bad += [e["params"] for e in b.events("Runtime.exceptionThrown")]
    bad += [e["params"] for e in b.events("Runtime.consoleAPICalled")
            if e["params"].get("type") in ("error", "warning")]
    return bad


def test_html_report_renders_with_its_plots(backdoor_report: ScanReport, tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    html = HtmlFormatter().format(backdoor_report, load_ruleset())
    page = tmp_path / "report.html"
    page.write_text(html, "utf-8")
    # The same page with one inline style attribute and one remote image: the browser must
    # refuse both and say so, or the clean page's silence would prove nothing.
    tampered = tmp_path / "tampered.html"
    tampered.write_text(html.replace("<h2>Findings</h2>", '<h2 style="color:red">Findings</h2>'
                                     '<img src="http://127.0.0.1:9/x.png">'), "utf-8")
    with Browser(chromium, tmp_path / "chrome") as b:
        for domain in ("Log.enable", "Runtime.enable"):
            b.call(domain, session=True)
        b.call("Emulation.setDeviceMetricsOverride", {"width": 1100, "height": 900,
                                                      "deviceScaleFactor": 1, "mobile": False},
               session=True)
        b.open(tampered.as_uri())
        refused = " ".join(str(p.get("text", "")) for p in problems(b))
        assert "Content Security Policy" in refused, refused
        assert b.js("getComputedStyle(document.querySelector('h2')).color") != "rgb(255, 0, 0)"

        b.open(page.as_uri())
        assert problems(b) == []
        # The hashed <style> applied: the verdict badge has its colour.
        assert b.js("getComputedStyle(document.querySelector('.verdict')).backgroundColor") \
            == "rgb(192, 57, 43)"
        charts = b.js("""[...document.querySelectorAll('svg.chart')].map(s => {
            const r = s.getBoundingClientRect();
            return {title: s.querySelector('title').textContent, w: r.width, h: r.height,
                    all: s.querySelectorAll('rect.bar').length,
                    bars: [...s.querySelectorAll('rect.bar')].filter(
                        x => x.getBoundingClientRect().height > 0).length,
                    lines: s.querySelectorAll('polyline.line').length};
        })""")
        titles = [c["title"] for c in charts]
        assert [t.split(" ")[0] for t in titles] == ["Update", "Singular", "Refusal",
                                                     "Triggers:"], titles
        for c in charts:
            assert c["w"] >= 600 and c["h"] >= 240, c
        energy, spectra, refusal, triggers = charts
        assert energy["bars"] >= 2 and spectra["lines"] >= 1
        # base and merged for each suite (harmful, benign); a 0% bar is there with no height
        assert refusal["all"] == 4 and refusal["bars"] >= 2
        assert triggers["all"] % 3 == 0 and triggers["bars"] >= 2
        png = b.screenshot()
        (tmp_path / "report.png").write_bytes(png)
        b.open("about:blank")
        import base64

        stats = b.js(PIXELS.replace("PNG", base64.b64encode(png).decode()))
    assert stats["width"] >= 1000 and stats["height"] > 2000  # the whole page
    assert stats["ink"] > 0.05 * stats["width"] * stats["height"]  # not blank
    assert stats["merged"] > 500 and stats["base"] > 500  # the bars are on screen
