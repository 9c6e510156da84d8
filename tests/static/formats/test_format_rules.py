"""One positive and one negative generated fixture for each format rule (AS234-AS236, AS335,
AS516, AS608), through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.cli_runner import Scan, rule_ids
from tests.static.factories_formats import (
    KOHYA_META,
    kohya_lora,
    llama_factors,
    lycoris_mixed,
    write_gguf,
    write_st,
)


def _gguf(folder: Path, **kw: object) -> Path:
    write_gguf(folder / "adapter.gguf", llama_factors(layers=1), **kw)  # type: ignore[arg-type]
    return folder


def test_as234_malformed_gguf(tmp_path: Path, cli: Scan) -> None:
    _, clean = cli(_gguf(tmp_path / "neg"))
    assert "AS234" not in rule_ids(clean)
    raw = (tmp_path / "neg" / "adapter.gguf").read_bytes()
    bad = tmp_path / "pos"
    bad.mkdir()
    # The first KV's key length (offset 24) becomes 2^60.
    (bad / "adapter.gguf").write_bytes(raw[:24] + (2 ** 60).to_bytes(8, "little") + raw[32:])
    code, doc = cli(bad)
    assert code == 1 and "AS234" in rule_ids(doc)


def test_as235_tokenizer_in_gguf_adapter(tmp_path: Path, cli: Scan) -> None:
    _, neg = cli(_gguf(tmp_path / "neg"))
    _, pos = cli(_gguf(tmp_path / "pos", tokenizer=True))
    assert "AS235" not in rule_ids(neg) and "AS409" not in rule_ids(neg)
    assert {"AS235", "AS409"} <= rule_ids(pos)  # tokenizer keys; the chat template as evidence


def test_as236_trailing_bytes_after_gguf_data(tmp_path: Path, cli: Scan) -> None:
    _, neg = cli(_gguf(tmp_path / "neg"))
    path = _gguf(tmp_path / "pos") / "adapter.gguf"
    path.write_bytes(path.read_bytes() + b"PK\x03\x04" + b"\0" * 60)
    _, pos = cli(path.parent)
    assert "AS236" not in rule_ids(neg) and "AS236" in rule_ids(pos)
    hit = next(f for f in pos["findings"] if f["rule_id"] == "AS236")
    assert hit["evidence"]["trailing_bytes"] == 64


def test_as335_kohya_training_metadata(tmp_path: Path, cli: Scan) -> None:
    _, neg = cli(write_st(tmp_path / "neg", "lora.safetensors", kohya_lora(), KOHYA_META))
    meta = {**KOHYA_META, "ss_dataset_dirs": json.dumps({"10_ohwx person": {"n_repeats": 10}}),
            "ss_training_comment": "see https://example.com/dataset.zip"}
    _, pos = cli(write_st(tmp_path / "pos", "lora.safetensors", kohya_lora(), meta))
    assert "AS335" not in rule_ids(neg)
    hit = next(f for f in pos["findings"] if f["rule_id"] == "AS335")
    assert hit["evidence"]["dataset_dirs"] == ["10_ohwx person"]
    assert hit["evidence"]["urls"] == ["https://example.com/dataset.zip"]


def test_as516_ia3_extreme_gain(tmp_path: Path, cli: Scan) -> None:
    _, neg = cli(write_st(tmp_path / "neg", "lycoris.safetensors", lycoris_mixed()))
    t = lycoris_mixed()
    ia3 = next(k for k in t if k.endswith(".weight"))
    t[ia3][2] = 40.0  # LyCORIS gain 1 + v = 41
    code, pos = cli(write_st(tmp_path / "pos", "lycoris.safetensors", t))
    assert "AS516" not in rule_ids(neg)
    assert code == 1 and "AS516" in rule_ids(pos)


def test_a_module_with_two_algorithms_is_reported_and_leaves_the_scan_incomplete(
        tmp_path: Path, cli: Scan) -> None:
    """LoHa and LoKr tensors under one module name: a loader applies one of them, so the module
    is named (AS503) and, its update unmeasured, the scan cannot be complete (exit 3)."""
    t = lycoris_mixed()
    loha_module = next(k for k in t if k.endswith(".hada_w1_a")).removesuffix(".hada_w1_a")
    lokr_key = next(k for k in t if k.endswith(".lokr_w1"))
    t[f"{loha_module}.lokr_w1"] = t[lokr_key]
    code, pos = cli(write_st(tmp_path / "pos", "lycoris.safetensors", t))
    assert code == 3 and pos["complete"] is False
    assert any(loha_module in s["reason"] and "several algorithms" in s["reason"]
               for s in pos["skipped"])
    assert "AS503" in rule_ids(pos)
    code, neg = cli(write_st(tmp_path / "neg", "lycoris.safetensors", lycoris_mixed()))
    assert neg["complete"] is True and not neg["skipped"]


def test_as607_probe_not_applicable(tmp_path: Path, cli: Scan) -> None:
    folder = write_st(tmp_path, "lora.safetensors", kohya_lora(), KOHYA_META)
    _, without = cli(folder)
    assert "AS608" not in rule_ids(without) and "probe" not in without["results"]
    _, with_base = cli(folder, "--base", "reference")
    assert "AS608" in rule_ids(with_base)
    assert with_base["results"]["probe"] == {
        "applies": False, "reason": next(f["message"] for f in with_base["findings"]
                                         if f["rule_id"] == "AS608")}
    assert np.isfinite(with_base["results"]["weights"]["summary"]["log10_total_fro"])
