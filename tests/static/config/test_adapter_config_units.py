"""Unit checks of the adapter_config analyzer's building blocks (key parsing, PEFT matching)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adapterscan.findings import JSONValue
from adapterscan.rules.model import RuleSet
from adapterscan.static.config.adapter_config import parse_config
from adapterscan.static.config.peft_match import Matcher, Targeting, module_kind, targeting
from adapterscan.static.config.peft_names import parse_lora_key
from tests.factories import adapter_config, lora_tensors, write_adapter
from tests.static.factories_adapter_config import adapter_config_ruleset, headers_of, ids, run


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return adapter_config_ruleset(tmp_path_factory.mktemp("as3rules"))


@pytest.mark.parametrize(("name", "expected"), [
    ("base_model.model.m.q_proj.lora_A.weight", ("base_model.model.m.q_proj", "lora_A", "weight")),
    ("base_model.model.m.q_proj.lora_B.default.weight",
     ("base_model.model.m.q_proj", "lora_B", "weight")),
    ("base_model.model.m.q_proj.lora_B.bias", ("base_model.model.m.q_proj", "lora_B", "bias")),
    ("base_model.model.m.embed_tokens.lora_embedding_A",
     ("base_model.model.m.embed_tokens", "lora_embedding_A", "weight")),
    ("base_model.model.m.q_proj.lora_magnitude_vector",
     ("base_model.model.m.q_proj", "lora_magnitude_vector", "weight")),
    ("base_model.model.m.q_proj.lora_magnitude_vector.weight",
     ("base_model.model.m.q_proj", "lora_magnitude_vector", "weight")),
    ("base_model.model.lm_head.weight", None),
    ("base_model.model.m.q_proj.lora_A.default.junk", None),
])
def test_parse_lora_key(name: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_lora_key(name) == expected


def test_targeting_follows_peft() -> None:
    m = Matcher()
    cfg: dict[str, JSONValue] = {"target_modules": ["q_proj"], "layers_to_transform": [1],
                                 "layers_pattern": "layers", "exclude_modules": ["mlp.q_proj"]}
    assert targeting(m, cfg, "model.layers.1.self_attn.q_proj") is Targeting.TARGETED
    assert targeting(m, cfg, "model.layers.0.self_attn.q_proj") is Targeting.NOT_TARGETED
    assert targeting(m, cfg, "model.layers.1.mlp.q_proj") is Targeting.EXCLUDED
    assert targeting(m, {"target_modules": "all-linear"}, "lm_head") is Targeting.NOT_TARGETED
    assert targeting(m, {"target_modules": ["q_proj"], "modules_to_save": ["q_proj"]},
                     "a.q_proj") is Targeting.EXCLUDED


def test_module_kind() -> None:
    assert module_kind("model.embed_tokens") == "embedding"
    assert module_kind("lm_head") == "head"
    assert module_kind("model.layers.3.post_attention_layernorm") == "norm"
    assert module_kind("transformer.h.0.ln_1") == "norm"
    assert module_kind("model.layers.3.self_attn.q_proj") is None


def test_parse_config_keeps_last_duplicate_like_python() -> None:
    cfg, dups = parse_config(b'{"a": {"b": 1, "b": 2}, "a": {"c": 3}}')
    assert cfg == {"a": {"c": 3}} and dups == ["b", "a"]


def test_bf16_zero_b(ruleset: RuleSet, tmp_path: Path) -> None:
    # numpy has no bfloat16: reuse the F16 bytes (zeros are zeros) under a BF16 header.
    import numpy as np
    write_adapter(tmp_path, tensors=lora_tensors(zero_b=True, dtype=np.float16))
    headers = headers_of(tmp_path)
    bf16 = {p: dataclasses.replace(h, tensors=tuple(dataclasses.replace(t, dtype="BF16")
                                                    for t in h.tensors))
            for p, h in headers.items()}
    assert "AS324" in ids(run(tmp_path, ruleset, headers=bf16)[1])


def test_profile_colon_is_not_a_file_url(ruleset: RuleSet, tmp_path: Path) -> None:
    write_adapter(tmp_path, config=adapter_config(notes="profile: default"))
    assert "AS322" not in ids(run(tmp_path, ruleset)[1])


def test_target_parameters_owner_module() -> None:
    m = Matcher()
    cfg: dict[str, JSONValue] = {"target_modules": None,
                                 "target_parameters": ["mlp.experts.gate_up_proj"]}
    assert targeting(m, cfg, "model.layers.0.mlp.experts") is Targeting.TARGETED
    assert targeting(m, cfg, "model.layers.0.mlp.router") is Targeting.NOT_TARGETED
