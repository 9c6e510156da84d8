"""The real LoRA scale: alpha/r, rsLoRA alpha/√r, rank_pattern and alpha_pattern as PEFT does."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from adapterscan.findings import JSONValue
from adapterscan.static.formats.model import Scale
from adapterscan.static.formats.scales import peft_scale
from adapterscan.static.weights.analysis import describe
from tests.factories import adapter_config
from tests.static.factories_weights import headers, lora, write


def _module(name: str = "base_model.model.model.layers.3.self_attn.q_proj") -> str:
    return name.removeprefix("base_model.model.")


def resolve_scale(cfg: dict[str, JSONValue] | None, target: str, rank: int) -> Scale:
    return peft_scale(cfg, target, rank)


def test_plain_and_rslora() -> None:
    assert resolve_scale(adapter_config(r=8, lora_alpha=16), _module(), 8).value == 2.0
    rs = resolve_scale(adapter_config(r=16, lora_alpha=16, use_rslora=True), _module(), 16)
    assert rs.value == pytest.approx(16 / math.sqrt(16)) and "rslora" in rs.source
    assert resolve_scale(None, _module(), 8).value == 1.0


def test_rank_and_alpha_patterns_match_like_peft() -> None:
    cfg = adapter_config(r=8, lora_alpha=16, rank_pattern={"q_proj": 4},
                         alpha_pattern={r"layers\.3\.self_attn\.q_proj": 64})
    s = resolve_scale(cfg, _module(), 4)
    assert (s.r, s.alpha, s.value) == (4, 64.0, 16.0)
    other = resolve_scale(cfg, _module("base_model.model.model.layers.3.self_attn.v_proj"), 8)
    assert other.value == 2.0
    # A suffix must match a whole name component ("(.*\.)?key$"), as in PEFT.
    assert resolve_scale(adapter_config(r=8, lora_alpha=8, rank_pattern={"_proj": 2}),
                         _module(), 8).value == 1.0


def test_dangerous_pattern_is_not_evaluated() -> None:
    cfg = adapter_config(r=8, lora_alpha=8, alpha_pattern={"(a+)+$": 800, "(": 1})
    s = resolve_scale(cfg, _module(), 8)
    assert s.value == 1.0 and "pattern-skipped" in s.source


def test_modules_pair_across_names(tmp_path: Path) -> None:
    t = lora(layers=2, modules=("q_proj", "v_proj"))
    t["base_model.model.lm_head.weight"] = t.pop(next(iter(t)))  # one A becomes a stray tensor
    folder = write(tmp_path / "a", t)
    model = describe(folder, headers(folder), adapter_config(r=4, lora_alpha=8))
    modules, others = model.modules, model.others
    assert [m.layer for m in modules] == [0, 0, 1, 1]
    assert sum(1 for m in modules if m.a is None) == 1
    whole = [m for m in modules if m.problem is None]
    assert len(whole) == 3 and whole[0].scale.value == 2.0
    assert [o.info.name for o in others] == ["base_model.model.lm_head.weight"]
    assert modules[0].target == "model.layers.0.self_attn.q_proj"
