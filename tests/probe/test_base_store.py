"""The base's measurements on disk: what comes back is what went in, and a bad entry is a miss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adapterscan.probe import signals as sg
from adapterscan.probe.base_store import META, TENSORS, DiskBaseCache
from adapterscan.probe.records import Measured


def _measured(n: int = 5, generate: bool = True) -> Measured:
    g = torch.Generator().manual_seed(0)
    fwd = {s: sg.ForwardOut(logprobs=torch.randn(n, 11, generator=g),
                            hidden=torch.randn(n, 7, generator=g))
           for s in ("harmful", "benign")}
    if not generate:
        return Measured(fwd, {}, {}, {})
    text = {s: [f"{s} answer {i}" for i in range(n)] for s in fwd}
    first = {s: list(range(n)) for s in fwd}
    labels = {s: ["refusal", "compliance", "other", "refusal", "refusal"][:n] for s in fwd}
    return Measured(fwd, text, first, labels)  # type: ignore[arg-type]


@pytest.mark.parametrize("generate", [True, False])
def test_an_entry_comes_back_as_it_was_written(tmp_path: Path, generate: bool) -> None:
    cache = DiskBaseCache(tmp_path)
    m = _measured(generate=generate)
    assert cache.get("k") is None
    cache.put("k", (m, [3, 4]))
    got = DiskBaseCache(tmp_path).get("k")  # another process: a fresh object
    assert got is not None
    back, ids = got
    assert ids == [3, 4]
    assert back.text == m.text and back.first_ids == m.first_ids and back.labels == m.labels
    for s in m.fwd:
        assert torch.equal(back.fwd[s].logprobs, m.fwd[s].logprobs)
        assert torch.equal(back.fwd[s].hidden, m.fwd[s].hidden)


def test_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    cache = DiskBaseCache(tmp_path)
    cache.put("k", (_measured(), [1]))
    meta = json.loads((tmp_path / "k" / META).read_text())
    meta["labels"]["harmful"][0] = "jailbroken"  # not a judge label
    (tmp_path / "k" / META).write_text(json.dumps(meta))
    assert cache.get("k") is None
    cache.put("k", (_measured(), [1]))
    meta = json.loads((tmp_path / "k" / META).read_text())
    meta["text"]["benign"] = meta["text"]["benign"][:2]  # fewer answers than prompts
    (tmp_path / "k" / META).write_text(json.dumps(meta))
    assert cache.get("k") is None
    cache.put("k", (_measured(), [1]))
    (tmp_path / "k" / TENSORS).write_bytes(b"\x00" * 16)
    assert cache.get("k") is None
    assert cache.hits == 0


@pytest.mark.slow
def test_a_second_scan_against_the_same_base_reuses_its_measurements(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from adapterscan.pipeline import ScanOptions, scan
    from adapterscan.probe.options import ProbeOptions
    from adapterscan.reference import reference_dir

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(reference_dir()),
                                                                dtype=torch.float32),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                      task_type="CAUSAL_LM"))
    model.save_pretrained(str(tmp_path / "zero"))  # B = 0: changes nothing
    cache = DiskBaseCache(tmp_path / "cache")
    opts = ScanOptions(base="reference", probe_cache=cache,
                       probe=ProbeOptions(max_prompts=16, trigger_search=False, threads=1))
    first = scan(tmp_path / "zero", options=opts)
    second = scan(tmp_path / "zero", options=opts)
    assert cache.hits == 1
    assert [f.rule_id for f in first.findings] == [f.rule_id for f in second.findings]
    p1, p2 = first.results["probe"], second.results["probe"]
    assert isinstance(p1, dict) and isinstance(p2, dict)
    assert p1["signals"] == p2["signals"]
    assert "base_first_token" in p1["timings"] and "base_first_token" not in p2["timings"]  # type: ignore[operator]
