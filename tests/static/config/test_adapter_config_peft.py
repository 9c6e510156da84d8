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
    for f in emit.findings:  # the embedding PEFT saves whole is named as what it is
        if f.rule_id == "AS314":
            assert "save_embedding_layers" in f.message and "embedding table" in f.message


def _gpt2(**extra: Any) -> Any:
    return transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=64, n_positions=32,
                                   **extra)


@pytest.mark.slow
def test_real_peft_seq_cls_head_is_task_head(ruleset: RuleSet, tmp_path: Path) -> None:
    """#23: a SEQ_CLS adapter as PEFT writes it ships `score` (the task type keeps it trainable):
    AS336, not AS314 / AS311."""
    torch.manual_seed(0)
    model = transformers.GPT2ForSequenceClassification(_gpt2(num_labels=3, pad_token_id=0))
    peft.get_peft_model(model, peft.LoraConfig(task_type="SEQ_CLS", r=4,
                                               target_modules=["c_attn"])).save_pretrained(tmp_path)
    found = ids(run(tmp_path, ruleset)[1])
    assert "AS336" in found and not {"AS311", "AS314"} & found, found


@pytest.mark.slow
def test_real_peft_nested_model_loads_nothing(ruleset: RuleSet, tmp_path: Path) -> None:
    """#23: get_peft_model on a PeftModel saves every tensor under a repeated prefix; PEFT itself
    (the oracle) then loads none of them, which AS337 says."""
    torch.manual_seed(0)
    inner = peft.get_peft_model(transformers.GPT2LMHeadModel(_gpt2()),
                                peft.LoraConfig(task_type="CAUSAL_LM", r=8,
                                                target_modules=["c_proj"]))
    outer = peft.get_peft_model(inner, peft.LoraConfig(task_type="CAUSAL_LM", r=4,
                                                       target_modules=["c_attn"]))
    for name, p in outer.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.01)
    outer.save_pretrained(tmp_path)
    found = ids(run(tmp_path, ruleset)[1])
    assert "AS337" in found and not {"AS319", "AS323"} & found, found
    with pytest.warns(UserWarning, match="missing adapter keys"):
        loaded = peft.PeftModel.from_pretrained(transformers.GPT2LMHeadModel(_gpt2()), tmp_path)
    assert all(not p.any() for n, p in loaded.named_parameters() if "lora_B" in n)


def _llama() -> Any:
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4))


@pytest.mark.slow
def test_real_peft_adalora_after_rank_allocation(ruleset: RuleSet, tmp_path: Path) -> None:
    """#23: AdaLoRA as PEFT writes it after update_and_allocate pruned ranks: lora_E beside each
    pair, rank_pattern holding boolean masks. Its config and tensors are checked (the scan is
    complete), with no finding on the masks."""
    model = peft.get_peft_model(_llama(), peft.AdaLoraConfig(
        init_r=6, target_r=3, tinit=1, tfinal=1, deltaT=1, total_step=5,
        target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for step in range(5):
        x = torch.randint(0, 64, (2, 8))
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        model.base_model.update_and_allocate(step)
        opt.zero_grad()
    assert model.peft_config["default"].rank_pattern  # masks were written
    model.peft_config["default"].base_model_name_or_path = "org/base"
    model.peft_config["default"].revision = PIN
    model.save_pretrained(tmp_path)
    result, emit = run(tmp_path, ruleset)
    assert not ids(emit), [f.message for f in emit.findings]
    assert not emit.skipped and not emit.errors
    assert result is not None


@pytest.mark.slow
def test_real_peft_oft_block_size_rank_zero(ruleset: RuleSet, tmp_path: Path) -> None:
    """OFTConfig's own defaults are r=0 with oft_block_size set: r=0 is valid there (AS304 is
    for a config PEFT would refuse)."""
    peft.get_peft_model(_llama(), peft.OFTConfig(r=0, oft_block_size=8,
                                                 target_modules=["q_proj"])
                        ).save_pretrained(tmp_path)
    assert "AS304" not in ids(run(tmp_path, ruleset)[1])
