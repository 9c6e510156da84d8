"""Full embedding / lm_head copies in an adapter, compared row by row with the base.

`modules_to_save` and `save_embedding_layers` ship whole weight matrices that replace the base
ones on load. Against the base weight, the energy of the change per vocabulary row tells whether
the copy rewrites a few tokens (trigger tokens, forced outputs) or the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.formats.model import TensorRef
from adapterscan.static.formats.tensor_reader import FLOAT_DTYPES, TensorReadError
from adapterscan.static.weights import checks as C
from adapterscan.static.weights.alignment import BASE_BLOCK_ELEMS, BaseWeights
from adapterscan.static.weights.trigger_tokens import robust_top

_PREFIX = "base_model.model."
VOCAB_NAMES = ("embed_tokens", "lm_head", "embed_out", "wte", "output")


def copy_target(name: str) -> str | None:
    """The base weight a saved full copy replaces, or None for other tensors.

    PEFT 0.21 saves `modules_to_save=["lm_head"]` as `base_model.model.lm_head.weight` and, for an
    embedding LoRA, the whole embedding as `...embed_tokens.base_layer.weight`; older versions
    keep a `modules_to_save.<adapter>` segment. All map to `lm_head.weight` /
    `model.embed_tokens.weight`.
    """
    parts = name.removeprefix(_PREFIX).split(".")
    if "modules_to_save" in parts:
        i = parts.index("modules_to_save")
        tail = parts[i + 1:]
        parts = parts[:i] + (tail[1:] if len(tail) == 2 else tail)
    parts = [p for p in parts if p != "base_layer"]
    if len(parts) < 2 or parts[-1] != "weight" or parts[-2] not in VOCAB_NAMES:
        return None
    return ".".join(parts)


def full_copy_rows(base: BaseWeights, others: Sequence[TensorRef],
                   emit: Emitter) -> list[JSONValue]:
    top_rows = int(emit.num(C.VOCAB_CONCENTRATION, "top_rows"))
    max_share = emit.num(C.VOCAB_CONCENTRATION, "max_share")
    min_vocab = emit.num(C.VOCAB_CONCENTRATION, "min_vocab")
    out: list[JSONValue] = []
    for ref in others:
        target = copy_target(ref.info.name)
        if target is None or ref.info.dtype not in FLOAT_DTYPES or len(ref.info.shape) != 2:
            continue
        name = target if target in base.index else base.find(target.removesuffix(".weight"))
        if name is None:
            continue
        try:
            new, old = ref.read(), base.read(name)
        except (OSError, TensorReadError) as exc:
            emit.skip(ref.file, f"{ref.info.name}: cannot compare with the base: {exc}")
            continue
        if (new.rows, new.cols) != (old.rows, old.cols) or new.rows < min_vocab:
            continue
        step = new.block_rows(BASE_BLOCK_ELEMS)
        parts = []
        with np.errstate(all="ignore"):
            for i in range(0, new.rows, step):
                d = new.to_f64(new.raw[i:i + step]) - old.to_f64(old.raw[i:i + step])
                parts.append(np.einsum("ij,ij->i", d, d))
        energies = np.concatenate(parts)
        total = float(energies.sum())
        if not np.isfinite(total) or total <= 0:
            continue
        top = robust_top(energies, top_rows)
        share = sum(e for _, e, _ in top) / total
        entry: dict[str, JSONValue] = {
            "tensor": ref.info.name, "base": name, "vocab": new.rows,
            "rows_changed": int((energies > 0).sum()), "top_rows": [i for i, _, _ in top],
            "top_share": share}
        out.append(entry)
        if share > max_share:
            emit.emit(C.VOCAB_CONCENTRATION,
                      f"{ref.info.name}: {share:.0%} of the change from the base sits in "
                      f"{len(top)} of {new.rows} rows", file=ref.file, tensor=ref.info.name,
                      evidence=entry)
    return out
