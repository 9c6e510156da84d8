"""Bounds on every read the static analyzers make. Hostile files never set these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StaticLimits:
    # Header cap for adapter files. A LoRA header lists ~150 bytes per tensor; a 70B model's
    # all-linear r=64 adapter has 80 layers x 7 modules x 2 = 1,120 tensors, about 170 KB.
    # 16 MiB leaves 100x headroom while the reference loader accepts up to 100,000,000 bytes,
    # which a hostile file uses to make scanners allocate and parse 100 MB of JSON.
    max_header_bytes: int = 16 * 1024 * 1024
    max_tensors: int = 100_000
    max_json_bytes: int = 4 * 1024 * 1024  # adapter_config.json, tokenizer_config.json...
    max_pickle_bytes: int = 2 * 1024**3
    max_pickle_opcodes: int = 5_000_000
    max_pickle_memo: int = 1_000_000
    max_nesting: int = 4  # pickles inside zips inside pickles...
    max_zip_members: int = 10_000
    max_sniff_bytes: int = 4096
    scan_tensor_data: bool = True
    chunk_bytes: int = 8 * 1024 * 1024
