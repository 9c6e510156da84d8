"""PEFT `adapter_model.bin` (torch zip archives) is read without unpickling: the same config and
weight findings as the same tensors in safetensors, and every archive whose tensors cannot be
located with certainty ends incomplete with a named reason (never a traceback, never a guess)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.cli_runner import Report, Scan, rule_ids
from tests.factories import adapter_config
from tests.static.factories_torch_archive import (
    Entry,
    archive,
    data_pkl,
    lora_entries,
    write_archive,
    write_bin,
)
from tests.static.factories_weights import key, lora, write

torch = pytest.importorskip("torch")

# What only a pickle container can show (the zip, its opcode walk, no safetensors beside it).
_CONTAINER_RULES = frozenset({"AS401", "AS403", "AS434", "AS449"})


def _rules(doc: Report) -> set[str]:
    return set(rule_ids(doc)) - _CONTAINER_RULES


def _both(cli: Scan, tmp: Path, tensors: dict[str, np.ndarray], **cfg: object
          ) -> tuple[tuple[int, Report], tuple[int, Report]]:
    config = adapter_config(**{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], **cfg})
    st = cli(write(tmp / "st", tensors, config))
    pt = cli(write_bin(tmp / "bin", tensors, config))
    return st, pt


def test_clean_bin_adapter_is_read_and_passes(tmp_path: Path, cli: Scan) -> None:
    (st_code, st), (code, doc) = _both(cli, tmp_path, lora())
    assert code == 0 and doc["complete"], (doc["skipped"], doc["errors"])
    assert _rules(doc) == _rules(st) and st_code == 0
    (adapter,) = doc["results"]["adapters"]
    assert adapter["file"] == "adapter_model.bin" and adapter["modules"] == 4


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nan_factor_in_bin_fails_as_in_safetensors(tmp_path: Path, cli: Scan,
                                                   dtype: type) -> None:
    t: dict[str, np.ndarray] = {k: v.astype(dtype) for k, v in lora().items()}
    t[key(2, "q_proj", "B")][5, 1] = np.nan
    (st_code, st), (code, doc) = _both(cli, tmp_path, t)
    assert code == st_code == 1 and "AS501" in rule_ids(doc)
    assert _rules(doc) == _rules(st)


def test_nan_in_a_head_copy_is_found_by_the_data_scan(tmp_path: Path, cli: Scan) -> None:
    """Not a LoRA factor: only the tensor-data scan reads it, on storage members as on
    safetensors data (AS230, with the file offset of the value's tensor)."""
    t = lora()
    t["base_model.model.score.modules_to_save.default.weight"] = np.ones((2, 32), np.float32)
    t["base_model.model.score.modules_to_save.default.weight"][1, 3] = np.inf
    (_, st), (code, doc) = _both(cli, tmp_path, t, modules_to_save=["score"],
                                 task_type="SEQ_CLS")
    assert code == 1 and "AS230" in rule_ids(doc) and _rules(doc) == _rules(st)
    (hit,) = [f for f in doc["findings"] if f["rule_id"] == "AS230"]
    raw = (tmp_path / "bin" / "adapter_model.bin").read_bytes()
    assert raw[hit["location"]["offset"]:][:4] == np.ones(1, "<f4").tobytes()


def test_bf16_bin_is_read(tmp_path: Path, cli: Scan) -> None:
    code, doc = cli(write_bin(tmp_path, lora(), bf16=True))
    assert code == 0 and doc["complete"], doc["skipped"]


@pytest.mark.parametrize(("rule", "edit", "cfg"), [
    ("AS319", lambda t: t, {"r": 8}),  # tensors of rank 4 under a config of rank 8
    ("AS324", lambda t: {k: (v * 0 if ".lora_B." in k else v) for k, v in t.items()}, {}),
    ("AS323", lambda t: {**t, "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight":
                         t[key(0, "q_proj", "A")]}, {}),
])
def test_config_rules_run_on_bin(tmp_path: Path, cli: Scan, rule: str, edit: object,
                                 cfg: dict[str, object]) -> None:
    assert callable(edit)
    (_, st), (_, doc) = _both(cli, tmp_path, edit(lora()), **cfg)
    assert rule in rule_ids(doc) and rule in rule_ids(st)
    assert _rules(doc) == _rules(st)


def test_views_into_a_shared_storage_are_read(tmp_path: Path, cli: Scan) -> None:
    """Tensors that are slices of one storage (offset > 0) are located inside it."""
    t = lora()
    big = torch.from_numpy(np.concatenate([t[key(0, "q_proj", "A")], t[key(1, "q_proj", "A")]]))
    sd = {k: torch.from_numpy(v) for k, v in t.items()}
    sd[key(0, "q_proj", "A")], sd[key(1, "q_proj", "A")] = big[:4], big[4:]
    folder = write_bin(tmp_path, {})
    torch.save(sd, folder / "adapter_model.bin")
    code, doc = cli(folder)
    assert code == 0 and doc["complete"], doc["skipped"]


def test_hand_assembled_archive_is_what_torch_loads(tmp_path: Path, cli: Scan) -> None:
    """The factory's pickle is torch's own pattern: torch loads it, and so do we."""
    entries, storages = lora_entries()
    folder = write_archive(tmp_path, archive(entries, storages))
    loaded = torch.load(folder / "adapter_model.bin", weights_only=True)
    assert list(loaded) == [e.name for e in entries]
    code, doc = cli(folder)
    assert code == 0 and doc["complete"], doc["skipped"]


def _variant(name: str) -> bytes:
    (a, b), storages = lora_entries()
    if name == "offset past the storage end":
        return archive([a, Entry(b.name, b.size, "1", offset=8)], storages)
    if name == "non-contiguous stride":
        return archive([a, Entry(b.name, b.size, "1", stride=(1, 32))], storages)
    if name == "missing storage member":
        return archive([a, b], {"0": storages["0"]})
    if name == "huge numel":
        return archive([a, Entry(b.name, (1 << 40, 1 << 40), "1", numel=1 << 62)], storages)
    if name == "huge shape":
        return archive([a, Entry(b.name, (1 << 40, 1 << 40), "1", numel=128)], storages)
    if name == "unknown storage type":
        return archive([a, Entry(b.name, b.size, "1", storage="QuantumStorage")], storages)
    if name == "storage size disagrees":
        return archive([a, Entry(b.name, b.size, "1", numel=1000)], storages)
    if name == "other callable":
        return archive([a, Entry(b.name, b.size, "1", rebuild="os\nsystem")], storages)
    if name == "compressed storage":
        return archive([a, b], storages, compress=zipfile.ZIP_DEFLATED)
    if name == "big-endian":
        return archive([a, b], storages, byteorder=b"big")
    if name == "truncated pickle":
        return archive([], storages, pkl=data_pkl([a, b])[:-7])
    if name == "legacy pickle":
        return b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + b"\0" * 64
    raise AssertionError(name)


@pytest.mark.parametrize(("variant", "reason"), [
    ("offset past the storage end", "outside its storage"),
    ("non-contiguous stride", "not C-contiguous"),
    ("missing storage member", "storage member data/1 missing"),
    ("huge numel", "storage declares 4611686018427387904 elements"),
    ("huge shape", "larger than its storage"),
    ("unknown storage type", "storage type torch.QuantumStorage unknown"),
    ("storage size disagrees", "storage declares 1000 elements"),
    ("other callable", "os.system is not part of torch's tensor pattern"),
    ("compressed storage", "is compressed"),
    ("big-endian", "only little-endian"),
    ("truncated pickle", "malformed pickle"),
    ("legacy pickle", "legacy torch pickle"),
])
def test_unlocatable_tensors_end_incomplete_with_a_reason(tmp_path: Path, cli: Scan,
                                                          variant: str, reason: str) -> None:
    code, doc = cli(write_archive(tmp_path, _variant(variant)))
    assert not doc["errors"], doc["errors"]
    reasons = [s["reason"] for s in doc["skipped"] if s["path"] == "adapter_model.bin"]
    assert any("tensor table not read" in r and reason in r for r in reasons), reasons
    assert not doc["complete"] and code in (1, 3)
