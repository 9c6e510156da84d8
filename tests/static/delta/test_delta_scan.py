"""Full checkpoints built from the bundled reference, scanned as deltas against it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adapterscan.examples import shipped_dir
from adapterscan.pipeline import ScanOptions, scan
from adapterscan.reference import reference_dir
from adapterscan.report import ScanReport
from adapterscan.static.options import DeltaOptions, StaticOptions, WeightOptions
from tests.static.delta.factories import (
    dense_finetune,
    merge_adapter,
    random_lora,
    reference_weights,
    write_checkpoint,
)

WEIGHT_RULES = "AS5"  # the weight statistics' rules (AS5xx), adapter and delta alike


def _options(recover: Path | None = None) -> ScanOptions:
    return ScanOptions(static=StaticOptions(
        weights=WeightOptions(base_dir=reference_dir(), unaligned_dir=reference_dir(True)),
        delta=DeltaOptions(recover_dir=recover, base_name="adapterscan/reference-aligned")))


def _ids(report: ScanReport) -> set[str]:
    return {f.rule_id for f in report.findings}


def _delta(report: ScanReport) -> dict[str, object]:
    d = report.results["delta"]
    assert isinstance(d, dict)
    return d


def test_merged_harmful_adapter_matches_the_adapter(tmp_path: Path) -> None:
    adapter = shipped_dir() / "harmful-compliance-r8"
    ck = write_checkpoint(tmp_path / "ck", merge_adapter(adapter))
    merged, plain = scan(ck, options=_options()), scan(adapter, options=_options())
    assert merged.complete and merged.verdict.decision is plain.verdict.decision
    weight_rules = {r for r in _ids(plain) if r.startswith(WEIGHT_RULES)}
    assert weight_rules and weight_rules <= _ids(merged)  # AS510 (Safe-LoRA) on both
    assert {r for r in _ids(merged) if r.startswith(WEIGHT_RULES)} - weight_rules == {"AS524"}
    merged_lora = _delta(merged)["merged_lora"]
    assert merged_lora["recognised"] is True and merged_lora["rank"] == 8  # type: ignore[index]
    # The statistics agree with the adapter's module by module.
    by_name = {m["module"].removeprefix("base_model.model."): m
               for m in plain.results["weights"]["modules"]}  # type: ignore[index,union-attr]
    for rec in merged.results["weights"]["modules"]:  # type: ignore[index,union-attr]
        ref = by_name[rec["module"]]
        assert rec["fro"] == pytest.approx(ref["fro"], rel=1e-3)
        assert rec["safe_lora_cosine"] == pytest.approx(ref["safe_lora_cosine"], abs=2e-3)


def test_merged_benign_adapter_recovered_and_rescanned(tmp_path: Path) -> None:
    adapter = shipped_dir() / "benign-translate-r16"
    ck = write_checkpoint(tmp_path / "ck", merge_adapter(adapter))
    out = tmp_path / "recovered"
    report = scan(ck, options=_options(recover=out))
    assert report.complete and "AS524" in _ids(report)
    assert _delta(report)["recovered_adapter"] == str(out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == cfg["lora_alpha"] == 16 and len(cfg["target_modules"]) == 42
    assert cfg["base_model_name_or_path"] == "adapterscan/reference-aligned"
    again = scan(out, options=_options())
    assert again.verdict.decision is report.verdict.decision
    assert {r for r in _ids(again) if r.startswith(WEIGHT_RULES)} == \
        {r for r in _ids(report) if r.startswith(WEIGHT_RULES)} - {"AS524"}


def test_recovered_factors_reproduce_the_merged_weights(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    weights = random_lora(reference_weights(), rank=4)
    ck = write_checkpoint(tmp_path / "ck", weights)
    scan(ck, options=_options(recover=tmp_path / "rec"))
    lora = load_file(str(tmp_path / "rec" / "adapter_model.safetensors"))
    name = "model.layers.1.mlp.up_proj"
    a = lora[f"base_model.model.{name}.lora_A.weight"]
    b = lora[f"base_model.model.{name}.lora_B.weight"]
    base = reference_weights()[name + ".weight"].astype(np.float32)
    rebuilt = (base + b @ a).astype(np.float16)
    assert a.shape[0] == 4
    assert np.abs(rebuilt.astype(np.float32) - weights[name + ".weight"]).max() <= 2e-3


def test_full_finetune_is_not_a_merged_lora(tmp_path: Path) -> None:
    ck = write_checkpoint(tmp_path / "ck", dense_finetune(reference_weights()))
    report = scan(ck, options=_options())
    d = _delta(report)
    assert report.complete and "AS524" not in _ids(report)
    assert d["merged_lora"]["recognised"] is False  # type: ignore[index]
    modules = d["modules"]
    assert isinstance(modules, list) and modules
    assert all(not m["low_rank"] and 0 < m["relative_residual"] < 1 for m in modules)
    assert d["tensors"]["vectors_changed"] == 13  # type: ignore[index]
    assert report.results["weights"]["modules"]  # type: ignore[index]


def test_swapped_tensor_is_a_full_rank_change(tmp_path: Path) -> None:
    w = reference_weights()
    a, b = "model.layers.2.self_attn.o_proj.weight", "model.layers.3.self_attn.o_proj.weight"
    w[a], w[b] = w[b], w[a]
    report = scan(write_checkpoint(tmp_path / "ck", w), options=_options())
    d = _delta(report)
    tensors = d["tensors"]
    assert tensors["matrices_changed"] == 2 and tensors["unchanged"] == 54  # type: ignore[index]
    assert "AS511" in _ids(report)  # ‖ΔW‖/‖W‖ of a swapped layer is large
    assert "AS524" not in _ids(report)


def test_renamed_tensor_is_added_and_removed(tmp_path: Path) -> None:
    w = reference_weights()
    w["model.layers.2.self_attn.o_proj.bypass"] = w.pop("model.layers.2.self_attn.o_proj.weight")
    report = scan(write_checkpoint(tmp_path / "ck", w), options=_options())
    assert {"AS519", "AS520"} <= _ids(report)
    assert report.verdict.decision.value == "warn"


def test_resized_vocabulary_reports_rows_by_token(tmp_path: Path) -> None:
    w = reference_weights()
    emb = w["model.embed_tokens.weight"]
    extra = np.full((8, emb.shape[1]), 0.01, dtype=emb.dtype)
    grown = np.concatenate([emb, extra])
    grown[[7, 42, 1337]] += np.float16(0.05)
    w["model.embed_tokens.weight"] = grown
    report = scan(write_checkpoint(tmp_path / "ck", w,
                                   config=lambda c: c.update(vocab_size=4104)),
                  options=_options())
    assert {"AS521", "AS523"} <= _ids(report) and report.complete
    rows = _delta(report)["token_rows"][0]  # type: ignore[index]
    assert rows["changed_rows"] == 3 and rows["added_rows"] == 8
    assert sorted(t["id"] for t in rows["top_rows"]) == [7, 42, 1337]
    assert all(isinstance(t["token"], str) for t in rows["top_rows"])


def test_sharded_checkpoint_in_another_dtype(tmp_path: Path) -> None:
    w = {k: v.astype(np.float32) for k, v in random_lora(reference_weights(), rank=4).items()}
    report = scan(write_checkpoint(tmp_path / "ck", w, shards=3), options=_options())
    d = _delta(report)
    assert "AS522" in _ids(report) and "AS524" in _ids(report)
    assert d["merged_lora"]["rank"] == 4 and d["tensors"]["unchanged"] == 14  # type: ignore[index]


def test_mismatched_base_ends_incomplete(tmp_path: Path) -> None:
    ck = write_checkpoint(tmp_path / "ck", reference_weights(),
                          config=lambda c: c.update(num_hidden_layers=12))
    report = scan(ck, options=_options())
    assert not report.complete and report.verdict.decision.value == "warn"
    assert any("num_hidden_layers" in e.message for e in report.errors)


def test_foreign_tensor_names_end_incomplete(tmp_path: Path) -> None:
    w = {k.replace("model.", "transformer."): v for k, v in reference_weights().items()}
    report = scan(write_checkpoint(tmp_path / "ck", w), options=_options())
    assert not report.complete
    assert any("tensor names are in the base" in e.message for e in report.errors)


def test_checkpoint_without_a_base_is_not_analysed(tmp_path: Path) -> None:
    ck = write_checkpoint(tmp_path / "ck", reference_weights())
    report = scan(ck)
    assert not report.complete
    assert any("--base" in s.reason for s in report.skipped)
