"""MLX and GGUF LoRAs of a Llama model are applied by the probe through their PEFT equivalent:
the merged weights equal base + s·B·A, q/k rows included (GGUF permutes them for RoPE)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adapterscan.reference import reference_dir
from adapterscan.static.formats.gguf import parse_gguf
from adapterscan.static.formats.model import AdapterModel
from adapterscan.static.formats.readers import read_adapters
from tests.static.factories_formats import llama_factors, mlx_config, write_gguf, write_mlx
from tests.static.factories_weights import headers

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

R = 4
# The bundled reference model's shape: the GGUF writer permutes q/k rows by head count.
_CONFIG = json.loads((reference_dir() / "config.json").read_text())
HIDDEN, LAYERS = _CONFIG["hidden_size"], _CONFIG["num_hidden_layers"]
HEADS, KV_HEADS = _CONFIG["num_attention_heads"], _CONFIG["num_key_value_heads"]


def _mlx(folder: Path, factors: dict[str, tuple[np.ndarray, np.ndarray]]) -> AdapterModel:
    write_mlx(folder, factors, scale=2.0)
    return read_adapters(folder, headers(folder), {}, {"adapter_config.json": mlx_config(R, 2.0)})


def _gguf(folder: Path, factors: dict[str, tuple[np.ndarray, np.ndarray]]) -> AdapterModel:
    path = write_gguf(folder / "adapter.gguf", factors, alpha=8.0, n_head=HEADS, n_kv_head=KV_HEADS)
    with path.open("rb") as fh:
        g = parse_gguf(fh, path.stat().st_size, "adapter.gguf")
    return read_adapters(folder, {}, {"adapter.gguf": g}, {})


@pytest.mark.parametrize("writer", [_mlx, _gguf])
def test_converted_adapter_merges_to_the_expected_weights(tmp_path: Path, writer) -> None:  # type: ignore[no-untyped-def]
    from adapterscan.fetch.base_model import local_base
    from adapterscan.probe.model_loading import apply_adapter, load_base

    factors = llama_factors(layers=LAYERS, hidden=HIDDEN, r=R)
    model = writer(tmp_path, factors)
    loaded = load_base(local_base("reference"), device="cpu", dtype="float32")
    base = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    peft_model = apply_adapter(loaded, tmp_path, model)
    merged = dict(peft_model.named_parameters())
    for target, (a, b) in factors.items():
        name = next(n for n in merged if n.endswith(f"{target}.base_layer.weight"))
        delta = merged[name].detach().numpy() - base[f"{target}.weight"].numpy()
        assert np.allclose(delta, 2.0 * b.astype(np.float64) @ a, atol=1e-5), target
