"""The probe loads PEFT variants beyond plain LoRA instead of failing the scan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


@pytest.mark.slow
def test_trainable_tokens_adapter_is_probed(tmp_path: Path) -> None:
    """Tied embeddings: PEFT saves the embed_tokens delta once and ties lm_head's to it; the
    probe must not call the tied copy missing."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from adapterscan.reference import reference_dir

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(reference_dir())),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"],
                                      trainable_token_indices=[5, 77]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name or "trainable_tokens_delta" in name:
                param.add_(torch.randn_like(param) * 1e-3)
    model.save_pretrained(str(tmp_path / "tt"), safe_serialization=True)
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["scan", str(tmp_path / "tt"), "--base", "reference",
                                   "--max-prompts", "8", "--no-trigger-search", "-f", "json",
                                   "-o", str(report)])
    data = json.loads(report.read_text())
    assert not data["errors"], (res.output, data["errors"])
    assert data["results"]["probe"]["n"]["harmful"] == 8
    rewritten = data["results"]["weights"]["trainable_tokens"][0]
    assert rewritten["token_ids"] == [5, 77]
    assert [c["token_id"] for c in data["results"]["weights"]["trigger_candidates"][:2]] \
        == sorted([5, 77], key=lambda i: -rewritten["relative_change"][[5, 77].index(i)])
