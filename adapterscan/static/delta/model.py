"""The factors of a delta scan described as the adapter model every weight rule reads.

The modules are what the PEFT reader would build from the written adapter (LoRA, scale 1), with
one difference: each factor's `file` is the checkpoint shard the matrix came from, so findings
point at the scanned files, while `path` is where the factor bytes are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adapterscan.static.delta.writer import ModuleFactors
from adapterscan.static.formats.model import (
    AdapterFile,
    AdapterModel,
    AdapterModule,
    Algorithm,
    Family,
    Format,
    Scale,
    TensorRef,
)
from adapterscan.static.weights.alignment import parse_header

SCALE_SOURCE = "delta factorization (B·A = ΔW, scale 1)"
NOTE = "ΔW against the base, factorized as B·A (static/delta)"


def build_model(weights: Path, modules: Sequence[tuple[ModuleFactors, str]]) -> AdapterModel:
    """One AdapterFile per checkpoint file, its modules in the order they were written."""
    header = parse_header(weights, weights.name)
    by_file: dict[str, list[AdapterModule]] = {}
    for mod, file in modules:
        a, b = header.tensor(mod.a_key), header.tensor(mod.b_key)
        if a is None or b is None:
            raise ValueError(f"{weights}: factors of {mod.target} missing")
        refs = {"A": TensorRef(file, weights, header, a), "B": TensorRef(file, weights, header, b)}
        by_file.setdefault(file, []).append(AdapterModule(
            name=mod.target, algorithm=Algorithm.LORA, factors=refs,
            scale=Scale(1.0, mod.rank, float(mod.rank), SCALE_SOURCE), target=mod.target,
            embedding=mod.embedding))
    return AdapterModel(tuple(
        AdapterFile(path=f, format=Format.PEFT, family=Family.CAUSAL_LM, modules=tuple(ms),
                    note=NOTE) for f, ms in by_file.items()))
