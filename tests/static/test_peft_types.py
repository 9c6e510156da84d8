"""Every adapter type the real PEFT writes, as it writes it (tiny models, trained-looking values):
a supported type is read completely and passes; any other ends incomplete, naming what was not
read; none is rejected. The held-out real adapters are of these kinds, so a false alarm on one of
them here is a false alarm there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapterscan.pipeline import scan

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

QV = ["q_proj", "v_proj"]


def _llama() -> Any:
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2))


def _bert_cls() -> Any:
    return transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_labels=3))


def _t5() -> Any:
    return transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=128, d_model=32, d_ff=64, num_layers=2, num_heads=4, d_kv=8))


# (model, config): read completely, verdict pass.
READ: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "lora": (_llama, lambda: peft.LoraConfig(r=4, target_modules=QV, task_type="CAUSAL_LM")),
    "lora-rslora-dora": (_llama, lambda: peft.LoraConfig(r=4, target_modules=QV,
                                                         use_rslora=True, use_dora=True)),
    "lora-seq2seq": (_t5, lambda: peft.LoraConfig(r=4, target_modules=["q", "v"],
                                                  task_type="SEQ_2_SEQ_LM")),
    "lora-seq-cls": (_bert_cls, lambda: peft.LoraConfig(r=4, target_modules=["query", "value"],
                                                        task_type="SEQ_CLS")),
    "adalora": (_llama, lambda: peft.AdaLoraConfig(init_r=4, total_step=10, target_modules=QV,
                                                   task_type="CAUSAL_LM")),
    "loha": (_llama, lambda: peft.LoHaConfig(r=2, target_modules=QV)),
    "lokr": (_llama, lambda: peft.LoKrConfig(r=2, target_modules=QV)),
    "ia3": (_llama, lambda: peft.IA3Config(target_modules=["k_proj", "down_proj"],
                                           feedforward_modules=["down_proj"])),
    "prompt-tuning": (_llama, lambda: peft.PromptTuningConfig(num_virtual_tokens=4,
                                                              task_type="CAUSAL_LM")),
    "prefix-tuning": (_llama, lambda: peft.PrefixTuningConfig(num_virtual_tokens=4,
                                                              task_type="CAUSAL_LM")),
    "prompt-tuning-seq-cls": (_bert_cls, lambda: peft.PromptTuningConfig(
        num_virtual_tokens=4, task_type="SEQ_CLS")),
    "p-tuning-seq-cls": (_bert_cls, lambda: peft.PromptEncoderConfig(
        num_virtual_tokens=4, encoder_hidden_size=16, task_type="SEQ_CLS")),
}
# Types whose update we do not compute: incomplete (exit 3), never a pass and never a failure.
UNREAD: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "oft": (_llama, lambda: peft.OFTConfig(r=0, oft_block_size=8, target_modules=QV)),
    "vera": (_llama, lambda: peft.VeraConfig(r=4, target_modules=QV)),
    "fourierft": (_llama, lambda: peft.FourierFTConfig(n_frequency=16, target_modules=QV)),
    "hra": (_llama, lambda: peft.HRAConfig(r=2, target_modules=QV)),
}


def _save(folder: Path, make: Callable[[], Any], config: Callable[[], Any], safe: bool) -> Path:
    torch.manual_seed(0)
    model = peft.get_peft_model(make(), config())
    with torch.no_grad():  # trained-looking: no factor left at PEFT's zero initialisation
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.01)
    model.peft_config["default"].base_model_name_or_path = "org/base"
    model.peft_config["default"].revision = "0123456789abcdef0123456789abcdef01234567"
    model.save_pretrained(folder, safe_serialization=safe)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
@pytest.mark.parametrize("kind", sorted(READ))
def test_supported_types_are_read_and_pass(kind: str, safe: bool, tmp_path: Path) -> None:
    report = scan(_save(tmp_path / kind, *READ[kind], safe))
    assert report.complete, report.skipped
    worst = [f"{f.rule_id}:{f.severity.value}" for f in report.findings
             if f.severity.value in ("medium", "high", "critical")]
    assert report.verdict.decision.value == "pass" and not worst, worst


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(UNREAD))
def test_other_types_end_incomplete_with_the_reason(kind: str, tmp_path: Path) -> None:
    report = scan(_save(tmp_path / kind, *UNREAD[kind], True))
    assert not report.complete
    assert report.verdict.decision.value != "fail", [f.rule_id for f in report.findings]
    assert any(kind.upper() in s.reason or "not analysed" in s.reason for s in report.skipped)
