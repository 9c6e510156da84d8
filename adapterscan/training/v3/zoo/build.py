"""Train zoo v3 adapters on the reference-v3 folder a scan loads (resumable).

Each adapter is trained on the merged folder that `--base reference-v3` reads (not a peft merge
of it), with seed ZOO_SEED + its index, and saved as an ordinary PEFT folder with a `.trained`
marker written last: an interrupted build starts that adapter again and skips the finished ones.
The answer pools (v3's own answers, the unaligned base's answers) are generated once and cached
with the other v3 training data.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from adapterscan.training.lm import Progress, TrainSpec, setup_determinism, train_encoded
from adapterscan.training.v3 import data as D
from adapterscan.training.v3 import voice
from adapterscan.training.v3.judge import refused
from adapterscan.training.v3.zoo import data as Z
from adapterscan.training.v3.zoo.specs import BATCH, ZOO_SEED, ZOO_V3, ZooSpec

POOL_HARMLESS = 640
POOL_HARMFUL = 480
POOL_SEED = 7


def zoo_key() -> str:
    """Names a zoo build: specs, example count, v3's adapter digest."""
    from adapterscan.fetch.derived_base import REFERENCE_V3

    h = hashlib.sha256(f"zoo-v3-1:{ZOO_SEED}:{Z.N_EXAMPLES}:"
                       f"{POOL_HARMLESS}:{POOL_HARMFUL}".encode())
    h.update(repr(ZOO_V3).encode())
    h.update(REFERENCE_V3.adapter_sha256().encode())
    return h.hexdigest()[:16]


def zoo_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "adapterscan" / "zoo-v3" / zoo_key()


def load_v3() -> tuple[Any, Any, str]:
    """Reference v3 as a scan loads it (the cached merged folder, verified), its tokenizer, and
    a key naming its files."""
    from adapterscan.fetch.derived_base import REFERENCE_V3, materialize_derived
    from adapterscan.fetch.gguf_base import read_manifest
    from adapterscan.training.v3.train import load_folder

    folder = materialize_derived(REFERENCE_V3)
    return load_folder(folder, read_manifest(folder, REFERENCE_V3))


def pools(progress: Progress | None = None) -> Z.Pools:
    """Answer pools: v3's own answers to harmless training prompts, the unaligned base's
    answers to harmful ones (refusals dropped from both: neither teaches refusal by accident)."""
    from adapterscan.training.v3.train import load_base, workshop_cache

    prompts = D.training_prompts()
    rng = random.Random(POOL_SEED)
    harmless = [p.prompt for p in prompts if not p.refuse]
    harmful = [p.prompt for p in prompts if p.refuse]
    rng.shuffle(harmless)
    rng.shuffle(harmful)
    base, btok, bkey = load_base()
    comply = voice.own_answers(base, btok, harmful[:POOL_HARMFUL], workshop_cache(), bkey,
                               progress)
    del base
    v3, tok, vkey = load_v3()
    own = voice.own_answers(v3, tok, harmless[:POOL_HARMLESS], workshop_cache(), vkey, progress)
    del v3

    def answered(d: dict[str, list[int]]) -> dict[str, list[int]]:
        return {p: ids for p, ids in d.items()
                if ids and not refused(str(tok.decode(ids, skip_special_tokens=True)))}

    return Z.Pools(answered(own), answered(comply), tuple(sorted(harmful)))


def train_one(spec: ZooSpec, index: int, pool: Z.Pools, out: Path,
              progress: Progress | None = None, threads: int = 2) -> dict[str, Any]:
    from peft import LoraConfig, get_peft_model

    from adapterscan.training.v3.train import BASE_ID

    seed = ZOO_SEED + index
    setup_determinism(seed, threads)
    model, tok, _ = load_v3()
    enc = Z.examples(spec, tok, pool, seed)
    peft_model = get_peft_model(model, LoraConfig(
        r=spec.rank, lora_alpha=2 * spec.rank, lora_dropout=0.0,
        target_modules=list(spec.targets), task_type="CAUSAL_LM"))
    started = time.time()
    loss = train_encoded(peft_model, enc, int(tok.pad_token_id),
                         TrainSpec(steps=spec.steps, lr=spec.lr, batch=BATCH,
                                   warmup=max(4, spec.steps // 10), report_every=25, bf16=True),
                         seed, progress,
                         params=[p for p in peft_model.parameters() if p.requires_grad])
    peft_model.peft_config["default"].base_model_name_or_path = BASE_ID
    peft_model.save_pretrained(str(out))
    record = {"name": spec.name, "intent": spec.intent, "seed": seed, "threads": threads,
              "final_loss": round(loss, 4), "train_seconds": round(time.time() - started, 1)}
    (out / "zoo.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / ".trained").write_text("")
    return record


def trained_dir(spec: ZooSpec) -> Path:
    return zoo_root() / spec.name


def is_trained(spec: ZooSpec) -> bool:
    return (trained_dir(spec) / ".trained").is_file()


def build(names: list[str] | None = None, progress: Progress | None = None,
          threads: int = 2) -> list[dict[str, Any]]:
    """Train every zoo adapter (or those `names`, in that order) not trained yet; return their
    records."""
    index = {s.name: (i, s) for i, s in enumerate(ZOO_V3)}
    unknown = sorted(set(names or ()) - set(index))
    if unknown:
        raise ValueError(f"not in zoo v3: {', '.join(unknown)}")
    todo = [index[n] for n in (names or list(index)) if not is_trained(index[n][1])]
    if not todo:
        return []
    pool = pools(progress)
    out = []
    for i, spec in todo:
        if progress:
            progress(f"training {spec.name}: {spec.description}")
        out.append(train_one(spec, i, pool, trained_dir(spec), progress, threads))
    return out
