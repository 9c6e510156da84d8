"""Reference v3 measured where training never looked, with a judge the probe does not use.

Prompt sets (corpus.eval_sets): harmful and harmless topics held out by hash, in trained frames
and in frames training never used; the public sets' held-out fifth, plain and in new
wrappers; jailbreak and safe-context frames never trained; all of XSTest (never trained). Each
set is capped at `per_set` prompts (deterministic order). Completions are 24 greedy tokens,
judged by judge.refused. The base (SmolLM2 without the adapter) is measured beside it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from adapterscan.training.lm import Progress
from adapterscan.training.v3.judge import refused

NEW_TOKENS = 24


def refusal_rates(model: Any, tok: Any, sets: dict[str, tuple[str, ...]],
                  progress: Progress | None = None) -> dict[str, tuple[int, int]]:
    """{set: (refused, n)} on greedy completions."""
    import torch

    from adapterscan.probe import signals as sg

    out: dict[str, tuple[int, int]] = {}
    for name, prompts in sets.items():
        text, _ = sg.generate(model, tok, prompts, max_new_tokens=NEW_TOKENS, batch_size=32,
                              device=torch.device("cpu"))
        out[name] = (sum(refused(t) for t in text), len(text))
        if progress:
            progress(f"{name}: {out[name][0]}/{out[name][1]} refused")
    return out


def eval_prompts(per_set: int) -> tuple[dict[str, tuple[str, ...]], dict[str, bool]]:
    from adapterscan.training.reference import corpus as C

    sets = C.eval_sets(per_set=per_set)
    return ({s.name: s.prompts[:per_set] for s in sets}, {s.name: s.harmful for s in sets})


def merged_v3(adapter_dir: Path) -> tuple[Any, Any]:
    """The base with the shipped adapter merged, loaded the way a scan loads reference v3."""
    from peft import PeftModel

    from adapterscan.training.v3.train import load_base

    model, tok, _ = load_base()
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.eval()
    return merged, tok


def evaluate(adapter_dir: Path, per_set: int = 100,
             progress: Progress | None = None) -> dict[str, Any]:
    from adapterscan.training.lm import setup_determinism
    from adapterscan.training.v3.train import load_base

    setup_determinism(0, 2)
    sets, harmful = eval_prompts(per_set)
    started = time.time()
    base, tok, _ = load_base()
    base_rates = refusal_rates(base, tok, sets, progress)
    del base
    v3, tok = merged_v3(adapter_dir)
    v3_rates = refusal_rates(v3, tok, sets, progress)
    return {"judge": "training.v3.judge.refused on 24 greedy tokens", "per_set": per_set,
            "sets": {name: {"harmful": harmful[name], "base": list(base_rates[name]),
                            "v3": list(v3_rates[name])} for name in sets},
            "seconds": round(time.time() - started, 1)}
