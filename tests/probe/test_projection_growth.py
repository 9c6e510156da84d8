"""Growth reads the adapted layer's input norm on each architecture's own module paths."""

from __future__ import annotations

import pytest

from adapterscan.probe.projection_growth import _norm_weight

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_llama_input_layernorm() -> None:
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2))
    norm = model.model.layers[1].input_layernorm.weight
    with torch.no_grad():
        norm.uniform_(0.5, 2.0)
    got = _norm_weight(model, "model.layers.1.self_attn.q_proj")
    assert got is not None and torch.equal(got, norm.float())


def test_gpt2_block_path_and_ln_1() -> None:
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_embd=16, n_layer=2, n_head=2, vocab_size=32, n_positions=16))
    got = _norm_weight(model, "transformer.h.0.attn.c_attn")
    assert got is not None and torch.equal(got, model.transformer.h[0].ln_1.weight.float())


def test_gemma_scale_is_one_plus_its_weight() -> None:
    model = transformers.GemmaForCausalLM(transformers.GemmaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8))
    w = model.model.layers[0].input_layernorm.weight
    with torch.no_grad():
        w.uniform_(-0.5, 0.5)
    got = _norm_weight(model, "model.layers.0.self_attn.q_proj")
    assert got is not None and torch.allclose(got, 1.0 + w.float())
