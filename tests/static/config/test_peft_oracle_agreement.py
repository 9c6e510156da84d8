"""The orphan-tensor rule (AS323) agrees with PEFT itself (benchmarks/peft_oracle.py): a tensor
PEFT ignores on load is reported, and a clean adapter saved by PEFT reports nothing ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from adapterscan.pipeline import scan  # noqa: E402 - after the skips
from benchmarks.peft_oracle import oracle  # noqa: E402

pytestmark = pytest.mark.slow


def _save_gpt2_adapter(folder: Path) -> None:
    """A tiny GPT-2 LoRA adapter written by PEFT's own save_pretrained."""
    torch.manual_seed(0)
    base = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_embd=16, n_layer=2, n_head=2, n_positions=16, vocab_size=32))
    cfg = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], task_type="CAUSAL_LM")
    model = peft.get_peft_model(base, cfg)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # trained-looking factors, not PEFT's zero init
            torch.nn.init.normal_(p, std=0.02)
    model.save_pretrained(str(folder))


def _add_orphan(folder: Path) -> str:
    from safetensors.torch import load_file, save_file

    path = folder / "adapter_model.safetensors"
    tensors = load_file(str(path))
    name = "base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight"  # c_fc is not a target
    tensors[name] = torch.randn(2, 16) * 0.02
    save_file(tensors, str(path), metadata={"format": "pt"})
    return name


def _rules(folder: Path) -> set[str]:
    return {f.rule_id for f in scan(folder).findings}


def test_clean_adapter_nothing_ignored(tmp_path: Path) -> None:
    _save_gpt2_adapter(tmp_path)
    record = oracle(tmp_path)
    assert record.ok, record.error
    assert record.ignored == () and record.overwritten == ()
    assert len(record.loaded) == 4  # 2 layers x (lora_A, lora_B)
    assert "AS323" not in _rules(tmp_path)


def test_orphan_tensor_ignored_and_reported(tmp_path: Path) -> None:
    _save_gpt2_adapter(tmp_path)
    orphan = _add_orphan(tmp_path)
    record = oracle(tmp_path)
    assert record.ok, record.error
    assert record.ignored == (orphan,)
    assert "AS323" in _rules(tmp_path)
