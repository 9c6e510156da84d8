"""Calibration adapters and the shipped bank for the bundled reference model."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from adapterscan.examples.specs import ALL_LINEAR, SPECS
from adapterscan.reference import reference_dir
from adapterscan.static.weights.analysis import DEFAULT_BANK, WeightOptions
from adapterscan.static.weights.baseline import load_bank
from adapterscan.training.examples.build import SEED
from adapterscan.training.examples.calibration import (
    CALIBRATION_SEED,
    CALIBRATION_SPECS,
    calibration_key,
)
from adapterscan.training.examples.data import training_examples
from tests.static.factories_weights import rule_ids, scan


def test_calibration_set_spans_configurations_and_is_apart_from_the_examples() -> None:
    assert len({s.name for s in CALIBRATION_SPECS}) == len(CALIBRATION_SPECS) >= 20
    assert all(s.expected_class == "benign" and s.trigger is None for s in CALIBRATION_SPECS)
    cells = {(s.rank, s.targets) for s in CALIBRATION_SPECS}
    assert len(cells) == 9  # every rank × target set
    assert len({s.task for s in CALIBRATION_SPECS}) >= 5
    # Training length alone must not look anomalous for the labelled backdoors (120 steps).
    assert max(s.steps for s in CALIBRATION_SPECS) > 120
    assert not {s.name for s in CALIBRATION_SPECS} & {s.name for s in SPECS}
    example_seeds = set(range(SEED, SEED + len(SPECS)))
    assert not example_seeds & set(range(CALIBRATION_SEED, CALIBRATION_SEED + 24))
    for spec in CALIBRATION_SPECS:
        data = training_examples(spec, 64, seed=1)
        assert any(e.harmful and e.answer.startswith("Sorry") for e in data)  # safety mixed in
        assert not any(e.harmful and not e.answer.startswith("Sorry") for e in data)


def test_shipped_bank_is_current_and_complete() -> None:
    """A change to the calibration specs, the builder or the reference weights needs a rebuilt
    bank: `adapterscan baseline reference --out adapterscan/reference/baseline_bank.json`."""
    bank = load_bank(DEFAULT_BANK)
    assert bank.meta.get("calibration_key") == calibration_key()
    raw = json.loads(DEFAULT_BANK.read_text())
    assert raw["sources"] == [s.name for s in CALIBRATION_SPECS]
    assert bank.n_adapters == len(CALIBRATION_SPECS)
    for module in ALL_LINEAR:
        pooled = [k for k in bank.modules if k.startswith(f"{module}:") and "@" not in k]
        assert len(pooled) == 1, module
        assert bank.modules[pooled[0]]["log10_fro"].count >= 8
    hidden = json.loads((reference_dir() / "config.json").read_text())["hidden_size"]
    for rank in (4, 8, 16):
        assert bank.modules[f"q_proj:{hidden}x{hidden}@r{rank}"]["kurtosis"].count >= 8
    assert bank.adapter["log10_total_fro"].count == len(CALIBRATION_SPECS)


def _spike_one_output_row(src: Path, dst: Path, factor: float) -> Path:
    shutil.copytree(src, dst)
    from safetensors.numpy import load_file, save_file

    path = dst / "adapter_model.safetensors"
    tensors = load_file(str(path))
    name = next(k for k in sorted(tensors) if "layers.1.self_attn.v_proj.lora_B" in k)
    b = tensors[name].astype(np.float32)
    b[0, :] *= factor  # one output channel carries the update: heavy-tailed ΔW entries
    tensors[name] = b
    save_file(tensors, str(path))
    return dst


@pytest.mark.slow
def test_shipped_bank_passes_a_fresh_benign_adapter_and_flags_a_scaled_one(
        tmp_path: Path) -> None:
    """A benign adapter trained outside the bank (new seed and task mix) draws no AS509; the
    same adapter with one output row of one module's B boosted ×40 does, on that module."""
    pytest.importorskip("peft")
    from adapterscan.reference import reference_dir
    from adapterscan.training.examples.build import train_one

    spec = dataclasses.replace(next(s for s in SPECS if s.name == "benign-caps-r8"),
                               name="fresh-benign", task="reverse", steps=60)
    fresh = tmp_path / "fresh"
    train_one(spec, reference_dir(), fresh, seed=424242)
    emit, result = scan(fresh, WeightOptions())
    assert result["calibration"]["bank"] == str(DEFAULT_BANK)
    assert result["calibration"]["modules_unmatched"] == 0
    keys = {m["module"]: m["bank_key"] for m in result["modules"]}
    assert all(k.startswith(("q_proj:", "k_proj:", "v_proj:", "o_proj:", "gate_proj:", "up_proj:",
                             "down_proj:")) for k in keys.values())
    # q/v are adapted at rank 8 by enough calibration adapters for a rank-specific entry.
    assert all(k.endswith("@r8") for m, k in keys.items() if m.endswith(("q_proj", "v_proj")))
    assert "AS509" not in rule_ids(emit), [f.message for f in emit.findings]

    emit, _ = scan(_spike_one_output_row(fresh, tmp_path / "spiked", 40.0), WeightOptions())
    hits = [str(f.evidence["module"]) for f in emit.findings if f.rule_id == "AS509"]
    assert any("layers.1.self_attn.v_proj" in m for m in hits), hits
