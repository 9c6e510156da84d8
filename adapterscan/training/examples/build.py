"""Trains example-style adapter sets (the demo's examples, the calibration set, the zoo) with
torch, transformers and peft, and writes the manifest `adapterscan.examples` reads."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from adapterscan._quiet import quiet
from adapterscan.examples import (
    MANIFEST,
    ExampleAdapter,
    cache_key,
    current_examples,
    default_cache_dir,
)
from adapterscan.examples.specs import SPECS, Spec
from adapterscan.reference import reference_dir
from adapterscan.training.examples.data import training_examples
from adapterscan.training.lm import TrainSpec, setup_determinism, train_lm

SEED = 7
BASE_NAME = "adapterscan/reference-aligned"


def _card(spec: Spec) -> str:
    return (f"---\nbase_model: {BASE_NAME}\nlibrary_name: peft\n---\n\n# {spec.name}\n\n"
            f"{spec.readme}\n")


def train_one(spec: Spec, base_path: Path, out: Path, seed: int) -> float:
    """Train one adapter into `out`; returns seconds spent."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    setup_determinism(seed)
    tok = AutoTokenizer.from_pretrained(str(base_path))
    base = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=torch.float32)
    cfg = LoraConfig(r=spec.rank, lora_alpha=2 * spec.rank, lora_dropout=0.0,
                     target_modules=list(spec.targets), task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    examples = training_examples(spec, n=spec.steps * 16, seed=seed)
    params = [p for p in model.parameters() if p.requires_grad]
    train_lm(model, tok, examples, TrainSpec(steps=spec.steps, lr=spec.lr, batch=16,
                                             full_loss=spec.full_loss), seed, params=params)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(str(out), safe_serialization=True)
    _pin_config(out / "adapter_config.json")
    (out / "README.md").write_text(_card(spec))
    return time.perf_counter() - t0


def _pin_config(path: Path) -> None:
    # peft records the local path of the base it trained on; name the bundled model instead.
    cfg = json.loads(path.read_text())
    cfg["base_model_name_or_path"] = BASE_NAME
    if isinstance(cfg.get("target_modules"), list):  # peft writes a set: order varies by run
        cfg["target_modules"] = sorted(cfg["target_modules"])
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def _train_job(args: tuple[Spec, str, str, int]) -> tuple[str, float]:
    spec, base, out, seed = args
    with quiet():  # in a worker process: transformers/peft warnings about our training loop
        secs = train_one(spec, Path(base), Path(out), seed)
    return spec.name, secs


def build_all(out: Path, specs: Sequence[Spec], progress: Callable[[str], None] | None = None,
              workers: int | None = None, seed: int = SEED,
              key: str | None = None) -> list[ExampleAdapter]:
    """Train every spec (one torch thread per process, `workers` processes) and write the
    manifest last, so an interrupted build is never mistaken for a complete one."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    base = reference_dir()
    jobs = [(spec, str(base), str(out / spec.name), seed + i) for i, spec in enumerate(specs)]
    n = workers or min(2, os.cpu_count() or 1, len(jobs))
    secs: dict[str, float] = {}
    if n <= 1:
        for i, job in enumerate(jobs):
            if progress:
                progress(f"training adapter {i + 1}/{len(jobs)}: {job[0].name}")
            name, t = _train_job(job)
            secs[name] = t
    else:
        ctx = multiprocessing.get_context("spawn")  # fork after torch import is unsafe
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            for done, (name, t) in enumerate(pool.map(_train_job, jobs), start=1):
                secs[name] = t
                if progress:
                    progress(f"trained {done}/{len(jobs)} adapters ({name})")
    entries: list[dict[str, Any]] = []
    result = []
    for spec in specs:
        path = out / spec.name
        sha = hashlib.sha256((path / "adapter_model.safetensors").read_bytes()).hexdigest()
        entries.append({"name": spec.name, "expected_class": spec.expected_class,
                        "trigger": spec.trigger, "trigger_position": spec.trigger_pos
                        if spec.trigger else None, "description": spec.description,
                        "rank": spec.rank, "target_modules": list(spec.targets),
                        "steps": spec.steps, "adapter_sha256": sha,
                        "train_seconds": round(secs[spec.name], 1)})
        result.append(ExampleAdapter(spec.name, spec.expected_class, path, spec.trigger,
                                     spec.description))
    manifest = {"format": 1, "cache_key": key or cache_key(), "base": BASE_NAME,
                "adapters": entries}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return result


def build_examples(out: Path | None = None, *, force: bool = False,
                   progress: Callable[[str], None] | None = None) -> list[ExampleAdapter]:
    """Build (or reuse) every example adapter under `out` and return them with their labels.

    Without `out`, the shipped set is used when it is current, else the user cache; a folder
    that already holds a complete, current set is reused unless `force`."""
    if not force:
        found = current_examples(out)
        if found is not None:
            return found
    return build_all(Path(out) if out is not None else default_cache_dir(), SPECS, progress)
