"""PEFT trainable tokens: embedding rows an adapter replaces outright, named as trigger candidates.

`trainable_token_indices` (PEFT ≥ 0.15) ships `...embed_tokens.token_adapter.trainable_tokens_delta`
with one row per listed token id; on load those rows *replace* the base embedding rows
(`index_copy`). Rewriting a handful of token embeddings is exactly how a trigger token is planted,
and also how new chat-template tokens are legitimately trained, so this is evidence (AS316 flags
the config), and the rewritten tokens go first in the behavioral probe's trigger search.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.config.peft_names import PREFIX
from adapterscan.static.formats.model import TensorRef
from adapterscan.static.formats.tensor_reader import FLOAT_DTYPES, TensorReadError
from adapterscan.static.weights.alignment import BaseWeights
from adapterscan.static.weights.trigger_tokens import TokenCandidate

_MARK = ".token_adapter.trainable_tokens_delta"
MAX_TOKENS = 65_536  # rows of one delta; a vocabulary-sized delta is a full copy, not tokens
SOURCE = "trainable-tokens"


def delta_target(name: str) -> str | None:
    """`model.embed_tokens` for a trainable-tokens delta tensor name, else None."""
    at = name.find(_MARK)
    if at < 0:
        return None
    rest = name[at + len(_MARK):]
    if rest and not (rest.startswith(".") and rest.count(".") <= 2):  # .default / .weight
        return None
    return name[:at].removeprefix(PREFIX)


def _indices(config: Mapping[str, JSONValue] | None, target: str) -> list[int] | None:
    raw = config.get("trainable_token_indices") if config else None
    if isinstance(raw, dict):  # {"embed_tokens": [...], ...}: keys name the layer by suffix
        raw = next((v for k, v in raw.items()
                    if target == k or target.endswith("." + str(k))), None)
    if not isinstance(raw, list):
        return None
    ids = [i for i in raw if isinstance(i, int) and not isinstance(i, bool)]
    return ids if len(ids) == len(raw) else None


def trainable_tokens(others: Sequence[TensorRef], config: Mapping[str, JSONValue] | None,
                     base: BaseWeights | None, vocab: Mapping[int, str],
                     emit: Emitter) -> tuple[list[JSONValue], list[TokenCandidate]]:
    """Records per delta tensor and, with a base, the rewritten tokens as candidates (largest
    relative change first). Anything that cannot be checked is a skip, never a pass."""
    records: list[JSONValue] = []
    cands: list[TokenCandidate] = []
    for ref in others:
        target = delta_target(ref.info.name)
        if target is None:
            continue
        shape = list(ref.info.shape)
        ids = _indices(config, target)
        if ref.info.dtype not in FLOAT_DTYPES or len(shape) != 2 or not 0 < shape[0] <= MAX_TOKENS:
            emit.skip(ref.file, f"{ref.info.name}: trainable-tokens delta of dtype "
                      f"{ref.info.dtype} and shape {shape} is not a float matrix of at most "
                      f"{MAX_TOKENS} rows; not analysed")
            continue
        if ids is None or len(ids) != shape[0] or len(set(ids)) != len(ids):
            emit.skip(ref.file, f"{ref.info.name}: {shape[0]} rewritten rows but "
                      f"trainable_token_indices for {target} is "
                      f"{'missing or not a list of ints' if ids is None else f'{len(ids)} ids'}"
                      "; the rewritten tokens cannot be named")
            continue
        record: dict[str, JSONValue] = {"tensor": ref.info.name, "module": target,
                                        "token_ids": list(ids[:100]), "rows": shape[0]}
        records.append(record)
        if base is None:
            continue
        found = _against_base(ref, target, ids, base, emit)
        if found is None:
            continue
        change, name = found
        record["base"] = name
        record["relative_change"] = [float(c) for c in change[:100]]
        for j in np.argsort(-change, kind="stable"):
            if change[j] > 0:
                cands.append(TokenCandidate(ids[j], vocab.get(ids[j]), float(change[j]), 0.0,
                                            SOURCE))
    return records, cands


def _against_base(ref: TensorRef, target: str, ids: list[int], base: BaseWeights,
                  emit: Emitter) -> tuple[np.ndarray, str] | None:
    name = base.find(target)
    if name is None:
        emit.skip(ref.file, f"{ref.info.name}: no base weight for {target}; rewritten rows "
                  "not compared")
        return None
    try:
        new, old = ref.read(), base.read(name)
    except (OSError, TensorReadError) as exc:
        emit.skip(ref.file, f"{ref.info.name}: cannot compare with {name}: {exc}")
        return None
    if new.cols != old.cols or min(ids) < 0 or max(ids) >= old.rows:
        emit.skip(ref.file, f"{ref.info.name}: rows of width {new.cols} for ids "
                  f"{min(ids)}..{max(ids)} do not fit {name} {[old.rows, old.cols]}")
        return None
    with np.errstate(all="ignore"):
        rows = new.to_f64(new.raw)
        orig = old.to_f64(old.raw[np.asarray(ids, dtype=np.intp)])
        norms = np.linalg.norm(orig, axis=1)
        change = np.linalg.norm(rows - orig, axis=1) / np.where(norms > 0, norms, 1.0)
    if not bool(np.isfinite(change).all()):
        emit.skip(ref.file, f"{ref.info.name}: non-finite rows; relative change not computed")
        return None
    return change, name


def order_candidates(cands: Sequence[TokenCandidate]) -> list[TokenCandidate]:
    """Tokens the adapter rewrites outright first (largest change first), then the rest by z:
    the probe tries them in this order up to its limit."""
    rewritten = sorted((c for c in cands if c.source == SOURCE), key=lambda c: -c.score)
    ranked = sorted((c for c in cands if c.source != SOURCE),
                    key=lambda c: -c.z if math.isfinite(c.z) else 0.0)
    return rewritten + ranked
