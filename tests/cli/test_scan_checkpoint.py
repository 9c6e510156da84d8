"""`adapterscan scan CHECKPOINT --base auto|DIR`: a full checkpoint scanned as a delta, the probe
run on the checkpoint itself, the merged adapter recovered on request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app
from adapterscan.reference import reference_dir
from tests.cli_runner import schema_validator
from tests.static.delta.factories import random_lora, reference_weights, write_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference with a random rank-4 LoRA merged in; its model card names the reference."""
    return write_checkpoint(tmp_path_factory.mktemp("ck") / "merged",
                            random_lora(reference_weights(), rank=4, size=0.01))


def _run(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(app, ["scan", *args, "--format", "json"])
    report = json.loads(result.stdout)
    schema_validator().validate(report)
    return result.exit_code, report


def test_base_auto_reads_the_model_card_and_recovers_the_adapter(checkpoint: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "adapter"
    code, report = _run(str(checkpoint), "--base", "auto", "--recover-adapter", str(out),
                        "--max-prompts", "32", "--no-base-cache")
    ids = {f["rule_id"] for f in report["findings"]}  # type: ignore[union-attr]
    assert {"AS524", "AS109"} <= ids and "AS608" not in ids  # merged LoRA; base unpinned
    probe = report["results"]["probe"]  # type: ignore[index]
    assert "signals" in probe and "load_checkpoint" in probe["timings"]  # type: ignore[operator,index]
    assert report["base"]["source"] == "bundled"  # type: ignore[index]
    assert code in (0, 1)  # complete: the verdict is the policy's, never "incomplete"
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and cfg["base_model_name_or_path"] == "adapterscan/reference-aligned"


def test_a_base_of_another_shape_exits_3_with_the_reason(checkpoint: Path,
                                                         tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_checkpoint(other, reference_weights(),
                     config=lambda c: c.update(hidden_size=512))
    code, report = _run(str(checkpoint), "--base", str(other))
    assert code == 3
    assert any("hidden_size" in e["message"] for e in report["errors"])  # type: ignore[union-attr]


def test_recover_adapter_needs_base_and_an_empty_folder(checkpoint: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["scan", str(checkpoint), "--recover-adapter",
                               str(tmp_path / "x")]).exit_code == 2
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    assert runner.invoke(app, ["scan", str(checkpoint), "--base", str(reference_dir()),
                               "--recover-adapter", str(tmp_path / "full")]).exit_code == 2
