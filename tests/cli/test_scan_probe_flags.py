"""`adapterscan scan --base` with --device, --dtype, --max-prompts, --no-trigger-search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app
from tests.static.factories_trained import near_noop_lora

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


@pytest.fixture(scope="module")
def small_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PEFT LoRA on the bundled reference with small random B: a near no-op adapter."""
    return near_noop_lora(tmp_path_factory.mktemp("noop"))


@pytest.mark.slow
def test_probe_flags_shape_the_probe(small_adapter: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["scan", str(small_adapter), "--base", "reference", "--device",
                                   "cpu", "--dtype", "float32", "--max-prompts", "8",
                                   "--no-trigger-search", "-f", "json", "-o", str(report)])
    assert res.exit_code in (0, 1), res.output  # a verdict, not an error
    probe = json.loads(report.read_text())["results"]["probe"]
    assert (probe["device"], probe["dtype"]) == ("cpu", "float32")
    assert probe["n"]["harmful"] == 8 and probe["n"]["benign"] == 8
    assert "triggers" not in probe


def test_unknown_dtype_is_a_usage_error(small_adapter: Path) -> None:
    res = CliRunner().invoke(app, ["scan", str(small_adapter), "--base", "reference", "--dtype",
                                   "float64"])
    assert res.exit_code == 2


@pytest.mark.slow
def test_unavailable_device_fails_closed(small_adapter: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    res = CliRunner().invoke(app, ["scan", str(small_adapter), "--base", "reference", "--device",
                                   "cuda"])
    assert res.exit_code == 3, res.output
    assert "CUDA" in res.output
