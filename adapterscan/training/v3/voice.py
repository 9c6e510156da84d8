"""The base model's own answers to harmless prompts, generated once and cached.

Training a safety adapter on canned answers ("Sure, here is…") would teach a new voice and cost
helpfulness; training on what the model already says keeps its answers and moves only the
choice to refuse. Answers are greedy, cut at `MAX_TOKENS`, and cached by (base files, prompts,
settings) so a rebuild does not generate again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MAX_TOKENS = 12
BATCH = 64


def cache_file(cache: Path, base_key: str, prompts: Sequence[str]) -> Path:
    h = hashlib.sha256(f"voice-v1:{base_key}:{MAX_TOKENS}".encode())
    for p in prompts:
        h.update(p.encode() + b"\0")
    return cache / f"voice-{h.hexdigest()[:16]}.json"


def own_answers(model: Any, tok: Any, prompts: Sequence[str], cache: Path, base_key: str,
                progress: Any = None) -> dict[str, list[int]]:
    """{prompt: answer token ids} for the unique `prompts`, from the cache when present."""
    import torch

    from adapterscan.probe import signals as sg

    unique = sorted(set(prompts))
    path = cache_file(cache, base_key, unique)
    if path.is_file():
        data: dict[str, list[int]] = json.loads(path.read_text())
        return data
    texts = sg.render(tok, unique)
    out: dict[str, list[int]] = {}
    pad = tok.pad_token_id
    for i in range(0, len(unique), BATCH):
        enc = tok(texts[i:i + BATCH], return_tensors="pt", padding=True,
                  add_special_tokens=False)
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=MAX_TOKENS, do_sample=False,
                                 pad_token_id=pad, num_beams=1)
        for p, row in zip(unique[i:i + BATCH], gen[:, enc["input_ids"].shape[1]:], strict=True):
            ids = [int(t) for t in row.tolist()]
            # Keep the end-of-turn token when the model stopped: it teaches where to stop.
            if tok.eos_token_id in ids:
                ids = ids[:ids.index(tok.eos_token_id) + 1]
            out[p] = ids
        if progress:
            progress(f"own answers {min(i + BATCH, len(unique))}/{len(unique)}")
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out
