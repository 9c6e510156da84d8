"""The workshop stays apart: nothing on the scan path, and nothing the demo runs on a current
example set, imports `adapterscan.training` (torch training code, the training corpora)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.factories import adapter_config, write_adapter

SCAN_PATH = """
import json, sys
import adapterscan.cli.app
import adapterscan.examples
import adapterscan.integrations.preload
import adapterscan.pipeline
import adapterscan.probe.interface
import adapterscan.reference
import adapterscan.static.interface
from typer.testing import CliRunner

from adapterscan.pipeline import scan

report = scan(sys.argv[1])
cli = CliRunner().invoke(adapterscan.cli.app.app, ["scan", sys.argv[1], "-f", "json"])
loaded = sorted(m for m in sys.modules if m.startswith("adapterscan.training"))
print(json.dumps({"decision": report.verdict.decision.value, "stages": sorted(report.results),
                  "cli_exit": cli.exit_code, "training": loaded}))
"""

DEMO_PATH = """
import json, sys
import adapterscan.cli.demo_cmd
from adapterscan.cli.example_set import build_examples

examples = build_examples()
loaded = sorted(m for m in sys.modules if m.startswith("adapterscan.training"))
print(json.dumps({"n": len(examples), "training": loaded}))
"""


def _run(code: str, *args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_scan_path_never_imports_the_workshop(tmp_path: Path) -> None:
    # Named after the bundled reference, so the static scan also resolves the bundled base.
    cfg = adapter_config(base_model_name_or_path="adapterscan/reference-aligned")
    out = _run(SCAN_PATH, str(write_adapter(tmp_path / "adapter", config=cfg)))
    assert out["decision"] in ("pass", "warn", "fail")
    assert "weights" in out["stages"]  # the static weight analysis ran
    assert out["cli_exit"] in (0, 1)
    assert out["training"] == []


def test_demo_on_a_current_example_set_never_imports_the_workshop() -> None:
    out = _run(DEMO_PATH)
    assert out["n"] == 9
    assert out["training"] == []
