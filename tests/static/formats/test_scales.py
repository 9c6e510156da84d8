"""One PEFT scale resolver for the config checks and the weight analysis (formats/scales.py)."""

from __future__ import annotations

import math

from adapterscan.static.config.peft_match import Matcher
from adapterscan.static.formats.scales import peft_rank, peft_scale
from tests.factories import adapter_config

TARGET = "model.layers.0.self_attn.q_proj"


def test_config_view_takes_peft_defaults_and_keeps_infinities() -> None:
    cfg = adapter_config()
    del cfg["r"], cfg["lora_alpha"]
    found = peft_rank(cfg, TARGET, Matcher())
    assert (found.r, found.alpha, found.value) == (8.0, 8.0, 1.0)
    inf = peft_rank(adapter_config(r=4, lora_alpha=math.inf), TARGET, Matcher())
    assert inf.value == math.inf
    assert peft_rank(adapter_config(r=0), None, Matcher()).value == 0.0


def test_weight_view_falls_back_to_the_tensors() -> None:
    cfg = adapter_config(r=16)
    del cfg["lora_alpha"]
    assert peft_scale(cfg, TARGET, 16).value == 1.0  # alpha defaults to r here
    s = peft_scale(adapter_config(r=4, lora_alpha=math.inf), TARGET, 4)
    assert s.value == 1.0 and s.alpha == 4.0


def test_patterns_shared_and_bounded() -> None:
    cfg = adapter_config(r=8, lora_alpha=8, rank_pattern={"(": 1, "q_proj": 2},
                         alpha_pattern={"(a+)+$": 800})
    found = peft_rank(cfg, TARGET, Matcher())
    assert (found.r, found.alpha) == (2.0, 8.0) and "pattern-skipped" in found.source
    assert peft_scale(cfg, TARGET, 2).value == found.value == 4.0
    # Without a target, only the config's own values count.
    assert peft_rank(cfg, None, Matcher()).r == 8.0
