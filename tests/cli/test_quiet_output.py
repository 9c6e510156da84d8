"""The CLI's stderr carries no third-party warning lines or progress bars (run as a user would:
a subprocess, stderr captured, not a TTY)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.static.factories_trained import near_noop_lora

pytest.importorskip("torch")
pytest.importorskip("peft")

# A line Python's warnings module prints ("file.py:12: FutureWarning: ..."), its source echo
# ("  warnings.warn("), a logging-style warning, or a tqdm bar ("| 38/38 [00:00<...").
NOISE = re.compile(r"(\w+Warning\b|warnings\.warn\(|^WARNING|\bit/s\]|\d+/\d+ \[\d\d:\d\d)",
                   re.MULTILINE)


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adapterscan", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def assert_quiet(stderr: str) -> None:
    noisy = [line for line in stderr.splitlines() if NOISE.search(line)]
    assert not noisy, "third-party output on stderr:\n" + "\n".join(noisy[:20])


def test_noise_pattern_matches_what_the_libraries_print() -> None:
    """The pattern the tests rely on recognises the lines users complained about."""
    seen = ("/x/peft/utils/other.py:1508: UserWarning: Unable to fetch remote file",
            "/x/transformers/modeling_utils.py:3312: FutureWarning: `is_gradient_check",
            "  warnings.warn(",
            "Loading weights: 100%|██████████| 38/38 [00:00<00:00, 19965.37it/s]")
    assert all(NOISE.search(line) for line in seen)
    assert not NOISE.search("error: base model 'org/base' not found")


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA on the bundled reference with small random B, saved by peft as users do."""
    out = near_noop_lora(tmp_path_factory.mktemp("tiny"))
    cfg = json.loads((out / "adapter_config.json").read_text())
    # A Hub-style base name: peft looks such names up on the Hub (the warnings users saw).
    cfg["base_model_name_or_path"] = "adapterscan/reference-aligned"
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


@pytest.mark.slow
def test_probe_scan_stderr_is_quiet(tiny_adapter: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    res = run_cli("scan", str(tiny_adapter), "--base", "reference", "--max-prompts", "8",
                  "--no-trigger-search", "-f", "json", "-o", str(report))
    assert res.returncode in (0, 1), res.stderr
    assert_quiet(res.stderr)
    assert json.loads(report.read_text())["results"]["probe"]["n"]["harmful"] == 8


BUILD = """
import dataclasses, sys
from pathlib import Path
from adapterscan.examples import cache_key
from adapterscan.training.examples.build import build_all
from adapterscan.examples.specs import SPECS
short = {s.name: dataclasses.replace(s, steps=3) for s in SPECS}
root = Path(sys.argv[1])
# Two specs on two worker processes: the path `adapterscan demo` takes on a first run.
build_all(root / "pair", [short["benign-summary-r4-qv"], short["benign-caps-r8"]], workers=2)
# One adapter under the real cache key: the demo reuses it instead of training nine.
build_all(root / "demo", [short["benign-summary-r4-qv"]], workers=1, key=cache_key())
"""


@pytest.mark.slow
def test_demo_stderr_is_quiet(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path)], capture_output=True,
                           text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stderr
    assert_quiet(built.stderr)
    res = run_cli("demo", "--out", str(tmp_path / "demo"))
    assert res.returncode in (0, 1), res.stdout + res.stderr
    assert "summary-r4-qv" in res.stdout and "verdicts as expected" in res.stdout
    assert_quiet(res.stderr)
