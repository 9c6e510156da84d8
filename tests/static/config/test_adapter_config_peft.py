"""The analyzer against adapters written by the real PEFT (no false positives on genuine output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapterscan.rules.model import RuleSet
from tests.static.factories_adapter_config import adapter_config_ruleset, ids, run

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

PIN = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return adapter_config_ruleset(tmp_path_factory.mktemp("as3rules"))


def _save(folder: Path, **lora: Any) -> Path:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=4)
    model = peft.get_peft_model(transformers.LlamaForCausalLM(cfg),
                                peft.LoraConfig(task_type="CAUSAL_LM", **lora))
    for name, p in model.named_parameters():
        if "lora_B" in name or "lora_embedding_B" in name:  # trained-looking, not the zero init
            torch.nn.init.normal_(p, std=0.01)
    model.peft_config["default"].base_model_name_or_path = "org/base"
    model.peft_config["default"].revision = PIN
    model.save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(("lora", "expected"), [
    ({"target_modules": ["q_proj", "v_proj"]}, set()),
    ({"target_modules": "all-linear"}, set()),
    ({"target_modules": ["q_proj", "down_proj"], "use_dora": True,
      "rank_pattern": {"down_proj": 2}}, {"AS332"}),
    ({"target_modules": ["q_proj"], "layers_to_transform": [1], "layers_pattern": "layers"},
     set()),
    ({"target_modules": ["q_proj", "embed_tokens"]}, {"AS314", "AS315"}),
])
def test_real_peft_adapters(lora: dict[str, Any], expected: set[str], ruleset: RuleSet,
                            tmp_path: Path) -> None:
    _save(tmp_path / "a", r=4, lora_alpha=8, **lora)
    result, emit = run(tmp_path / "a", ruleset)
    assert ids(emit) == expected, [f.message for f in emit.findings]
    assert not emit.skipped and not emit.errors
    assert result is not None
