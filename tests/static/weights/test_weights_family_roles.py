"""Families split by role: a UNet LoRA's self-attention (`attn1.to_q`) and cross-attention
(`attn2.to_q`) modules share a shape but train to sizes ×10 apart on real adapters. Compared as
one family, honest modules looked like outliers of the other role; compared by role they do not,
and one module ×8 its own role still warns (AS518)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adapterscan.static.weights.family import family_keys
from tests.cli_runner import Scan, rule_ids
from tests.factories import adapter_config
from tests.static.factories_weights import write

R = 4
# (block path, hidden) of a Stable Diffusion UNet's transformer blocks, as PEFT names them.
BLOCKS = ([(f"down_blocks.0.attentions.{i}", 64) for i in range(2)]
          + [(f"up_blocks.3.attentions.{i}", 64) for i in range(3)]
          + [(f"down_blocks.1.attentions.{i}", 96) for i in range(2)]
          + [(f"up_blocks.2.attentions.{i}", 96) for i in range(3)])
CROSS_GAIN = 10.0  # attn2 modules train ×10 larger than attn1 ones (the real corpus)


def _key(block: str, attn: str, factor: str) -> str:
    return (f"base_model.model.{block}.transformer_blocks.0.{attn}.to_q"
            f".lora_{factor}.weight")


def _unet(seed: int, scaled: tuple[str, str] | None = None, factor: float = 1.0
          ) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for block, hidden in BLOCKS:
        for attn, gain in (("attn1", 1.0), ("attn2", CROSS_GAIN)):
            out[_key(block, attn, "A")] = rng.normal(0, 0.02, (R, hidden)).astype(np.float32)
            b = rng.normal(0, 0.02 * gain, (hidden, R))
            if scaled == (block, attn):
                b *= factor
            out[_key(block, attn, "B")] = b.astype(np.float32)
    return out


def _config() -> dict[str, object]:
    return adapter_config(r=R, lora_alpha=R, target_modules=["to_q"])


def test_honest_self_and_cross_attention_are_separate_families(tmp_path: Path,
                                                               cli: Scan) -> None:
    code, doc = cli(write(tmp_path, _unet(1), _config()))
    fired = rule_ids(doc)
    assert code == 0 and not fired & {"AS508", "AS517", "AS518"}, fired


def test_one_module_x8_its_role_warns(tmp_path: Path, cli: Scan) -> None:
    block = "up_blocks.3.attentions.1"
    code, doc = cli(write(tmp_path, _unet(1, (block, "attn1"), 8.0), _config()))
    assert code == 0
    (hit,) = [f for f in doc["findings"] if f["rule_id"] == "AS518"]
    assert hit["evidence"]["module"] == _key(block, "attn1", "A").removesuffix(".lora_A.weight")
    assert hit["evidence"]["group"] == "attn1.to_q:64x64"
    assert doc["verdict"]["decision"] == "warn"


def test_the_parent_joins_the_key_only_where_a_type_has_several() -> None:
    """LLM adapters keep their keys (`q_proj:64x64`): every q_proj sits under self_attn."""

    class _M:
        def __init__(self, target: str) -> None:
            self.target, self.module_type = target, target.rsplit(".", 1)[-1]
            self.algorithm = "lora"  # one algorithm: no algorithm in the key

    class _P:
        out_features = in_features = 64

    class _R:
        def __init__(self, target: str) -> None:
            self.module, self.pair = _M(target), _P()

    llm = [_R(f"model.layers.{i}.self_attn.q_proj") for i in range(3)]
    unet = [_R(f"down.{i}.attn{j}.to_q") for i in range(2) for j in (1, 2)]
    assert family_keys(llm) == ["q_proj:64x64"] * 3  # type: ignore[arg-type]
    assert family_keys(unet) == ["attn1.to_q:64x64", "attn2.to_q:64x64"] * 2  # type: ignore[arg-type]
