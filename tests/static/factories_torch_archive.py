"""PEFT `adapter_model.bin` files: real ones from `torch.save`, and hand-assembled data.pkl
pickles (the exact opcodes torch writes) whose fields a test can set to anything."""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.factories import adapter_config


def torch_save(path: Path, tensors: Mapping[str, np.ndarray], bf16: bool = False) -> Path:
    """`torch.save` of the tensors as PEFT saves its state dict (a plain dict)."""
    import torch

    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
    if bf16:
        sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}
    torch.save(sd, path)
    return path


def write_bin(folder: Path, tensors: Mapping[str, np.ndarray],
              config: Mapping[str, Any] | None = None, bf16: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = dict(config) if config is not None else adapter_config(r=4, lora_alpha=8,
                                                                  target_modules=["q_proj"])
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    torch_save(folder / "adapter_model.bin", tensors, bf16)
    return folder


# -- hand-assembled archives ---------------------------------------------------------------

def _u(s: str) -> bytes:
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def _int(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1: any size


def _tuple(items: Sequence[int]) -> bytes:
    return b"(" + b"".join(_int(i) for i in items) + b"t"


@dataclass(frozen=True)
class Entry:
    """One `name: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`."""

    name: str
    size: tuple[int, ...]
    key: str = "0"
    offset: int = 0
    stride: tuple[int, ...] | None = None  # C-contiguous when None
    storage: str = "FloatStorage"
    numel: int | None = None  # the storage's element count; the tensor's when None
    rebuild: str = "torch._utils\n_rebuild_tensor_v2"

    def contiguous(self) -> tuple[int, ...]:
        out, n = [], 1
        for d in reversed(self.size):
            out.append(n)
            n *= d
        return tuple(reversed(out))


def data_pkl(entries: Sequence[Entry]) -> bytes:
    body = b""
    for e in entries:
        numel = e.numel if e.numel is not None else math.prod(e.size)
        pid = (b"(" + _u("storage") + b"ctorch\n" + e.storage.encode() + b"\n" + _u(e.key)
               + _u("cpu") + _int(numel) + b"t")
        body += (_u(e.name) + b"c" + e.rebuild.encode() + b"\n(" + pid + b"Q" + _int(e.offset)
                 + _tuple(e.size) + _tuple(e.stride or e.contiguous()) + b"\x89"
                 + b"ccollections\nOrderedDict\n)R" + b"tR")
    return b"\x80\x02}(" + body + b"u."


def archive(entries: Sequence[Entry], storages: Mapping[str, bytes], *,
            byteorder: bytes | None = b"little",
            compress: int = zipfile.ZIP_STORED, pkl: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pkl if pkl is not None else data_pkl(entries))
        if byteorder is not None:
            zf.writestr("archive/byteorder", byteorder)
        for key, data in storages.items():
            zf.writestr(f"archive/data/{key}", data, compress_type=compress)
        zf.writestr("archive/version", b"3\n")
    return buf.getvalue()


def lora_entries(hidden: int = 32, r: int = 4) -> tuple[list[Entry], dict[str, bytes]]:
    """One q_proj LoRA pair (A r×in, B out×r) in two float32 storages, PEFT-named."""
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.05, (r, hidden)).astype("<f4")
    b = rng.normal(0, 0.05, (hidden, r)).astype("<f4")
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    return ([Entry(f"{prefix}.lora_A.weight", (r, hidden), "0"),
             Entry(f"{prefix}.lora_B.weight", (hidden, r), "1")],
            {"0": a.tobytes(), "1": b.tobytes()})


def write_archive(folder: Path, data: bytes, config: Mapping[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = dict(config) if config is not None else adapter_config(r=4, lora_alpha=8,
                                                                  target_modules=["q_proj"])
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    (folder / "adapter_model.bin").write_bytes(data)
    return folder
