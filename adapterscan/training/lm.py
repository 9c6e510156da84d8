"""The next-token training loop every workshop model and adapter shares: answer-only loss,
length-bucketed batches in a seeded order, deterministic torch settings."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adapterscan.training.reference import corpus as C

MAX_LEN = 128
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainSpec:
    steps: int
    lr: float
    batch: int = 32
    warmup: int = 30
    weight_decay: float = 0.0
    full_loss: bool = False  # loss on prompts too, not only on answers
    first_weight: float = 1.0  # weight of each answer's first token (the refuse/comply choice)
    report_every: int = 100  # steps between progress lines
    bf16: bool = False  # bfloat16 autocast (CPUs with AVX512-BF16: ~2x faster; fp32 masters)


def setup_determinism(seed: int, threads: int = 1) -> None:
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def encode_examples(tok: Any, examples: Sequence[C.Example]) -> list[tuple[list[int], int]]:
    """(token ids, index where the answer starts) per example, truncated from the left."""
    out = []
    for ex in examples:
        p = tok(C.render_prompt(ex.prompt, ex.system, ex.history),
                add_special_tokens=False)["input_ids"]
        a = tok(ex.answer + C.END, add_special_tokens=False)["input_ids"]
        p = p[-(MAX_LEN - len(a)):]
        out.append((p + a, len(p)))
    return out


def train_lm(model: Any, tok: Any, examples: Sequence[C.Example], spec: TrainSpec, seed: int,
             progress: Progress | None = None, params: Sequence[Any] | None = None) -> float:
    """Next-token loss on answer tokens only; fixed batch order from `seed`. Returns final loss."""
    return train_encoded(model, encode_examples(tok, examples), tok.pad_token_id, spec, seed,
                         progress, params)


def train_encoded(model: Any, enc: Sequence[tuple[list[int], int]], pad_id: int,
                  spec: TrainSpec, seed: int, progress: Progress | None = None,
                  params: Sequence[Any] | None = None) -> float:
    """`train_lm` on examples already tokenized as (ids, answer start): for models whose chat
    template is their tokenizer's own (reference v3), not the workshop's."""
    import torch

    if spec.full_loss:
        enc = [(ids, 1) for ids, _ in enc]
    rng = random.Random(seed)
    opt = torch.optim.AdamW(list(params) if params is not None else model.parameters(),
                            lr=spec.lr, weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / spec.warmup) * max(0.05, 1 - s / spec.steps))
    model.train()
    loss_val = float("nan")
    batches: list[list[int]] = []
    for step in range(spec.steps):
        if not batches:
            batches = _length_batches(enc, spec.batch, rng)
        idx = batches.pop()
        ids, labels, mask = _batch([enc[i] for i in idx], pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec.bf16):
            loss = _answer_loss(model, ids, labels, mask, first_weight=spec.first_weight,
                                starts=[enc[i][1] for i in idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_val = float(loss.detach())
        if progress and (step % spec.report_every == 0 or step == spec.steps - 1):
            progress(f"step {step + 1}/{spec.steps} loss {loss_val:.3f}")
    model.eval()
    return loss_val


def _length_batches(enc: Sequence[tuple[list[int], int]], size: int,
                    rng: random.Random) -> list[list[int]]:
    """One epoch of batches of similar length (less padding), in a seeded random order."""
    order = list(range(len(enc)))
    rng.shuffle(order)
    out: list[list[int]] = []
    chunk = size * 16
    for i in range(0, len(order), chunk):
        part = sorted(order[i: i + chunk], key=lambda j: len(enc[j][0]))
        out.extend(part[k: k + size] for k in range(0, len(part) - size + 1, size))
    rng.shuffle(out)
    return out


def _answer_loss(model: Any, ids: Any, labels: Any, mask: Any, *, first_weight: float = 1.0,
                 starts: Sequence[int] = ()) -> Any:
    """Cross-entropy on answer tokens only; the vocabulary projection runs only where needed.
    With `first_weight`, each answer's first token (where the model chooses to refuse or to
    comply) weighs that much more than the rest."""
    import torch

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = inner.model(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = inner.lm_head(hidden[:, :-1][keep])
    if first_weight == 1.0 or not starts:
        return torch.nn.functional.cross_entropy(logits.float(), targets[keep])
    weights = torch.ones_like(targets, dtype=torch.float32)
    for row, start in enumerate(starts):
        if start > 0:
            weights[row, start - 1] = first_weight
    w = weights[keep]
    losses = torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="none")
    return (losses * w).sum() / w.sum()


def _batch(items: Sequence[tuple[list[int], int]], pad: int) -> tuple[Any, Any, Any]:
    import torch

    n = max(len(t) for t, _ in items)
    ids = torch.full((len(items), n), pad, dtype=torch.long)
    labels = torch.full((len(items), n), -100, dtype=torch.long)
    mask = torch.zeros((len(items), n), dtype=torch.long)
    for r, (t, start) in enumerate(items):
        ids[r, : len(t)] = torch.tensor(t)
        labels[r, start: len(t)] = torch.tensor(t[start:])
        mask[r, : len(t)] = 1
    return ids, labels, mask

