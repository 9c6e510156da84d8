"""Batched measurements on one model: first-token distributions, hidden states, greedy text.

Everything is batched with left padding (ARCHITECTURE §4: batched greedy decoding is ~20x faster
than one prompt at a time). Prompts are rendered with the tokenizer's chat template as text and
tokenized separately (transformers 5 returns a BatchEncoding from apply_chat_template).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ForwardOut:
    logprobs: torch.Tensor  # [n, vocab] float32 on CPU: next-token log-probabilities
    hidden: torch.Tensor  # [n, hidden] float32 on CPU: last-token residual at `layer`


def render(tok: Any, prompts: Sequence[str]) -> list[str]:
    if getattr(tok, "chat_template", None):
        return [str(tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                            add_generation_prompt=True)) for p in prompts]
    return [f"{p}\n" for p in prompts]


def encode(tok: Any, texts: list[str], device: torch.device) -> dict[str, torch.Tensor]:
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    return {"input_ids": enc["input_ids"].to(device),
            "attention_mask": enc["attention_mask"].to(device)}


def left_pad(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of token rows padded on the left to the longest, as every probe
    batch: the last position is each row's last token."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r):] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r):] = 1
    return ids, mask


def pad_id(tok: Any) -> int:
    return int(tok.pad_token_id) if tok.pad_token_id is not None else 0


def middle_layer(model: Any) -> int:
    n = int(getattr(model.config, "num_hidden_layers", 2))
    return max(1, n // 2)


@torch.inference_mode()
def forward(model: Any, tok: Any, prompts: Sequence[str], *, layer: int, batch_size: int,
            device: torch.device) -> ForwardOut:
    texts = render(tok, prompts)
    lps: list[torch.Tensor] = []
    hs: list[torch.Tensor] = []
    for i in range(0, len(texts), batch_size):
        enc = encode(tok, texts[i:i + batch_size], device)
        # Left padding: positions must start at each row's first real token, as generate() does.
        pos = (enc["attention_mask"].long().cumsum(-1) - 1).clamp_min(0)
        # logits_to_keep=1: only the last position's logits (skips the LM head elsewhere).
        out = model(**enc, position_ids=pos, output_hidden_states=True, use_cache=False,
                    logits_to_keep=1)
        # Left padding: the last position is every row's last prompt token.
        lps.append(torch.log_softmax(out.logits[:, -1, :].float(), dim=-1).cpu())
        hs.append(out.hidden_states[layer][:, -1, :].float().cpu())
    if not lps:
        return ForwardOut(torch.zeros(0, 1), torch.zeros(0, 1))
    return ForwardOut(torch.cat(lps), torch.cat(hs))


@torch.inference_mode()
def generate(model: Any, tok: Any, prompts: Sequence[str], *, max_new_tokens: int,
             batch_size: int, device: torch.device) -> tuple[list[str], list[int]]:
    """Greedy completions and each completion's first token id (-1 when empty)."""
    texts = render(tok, prompts)
    out_text: list[str] = []
    first: list[int] = []
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for i in range(0, len(texts), batch_size):
        enc = encode(tok, texts[i:i + batch_size], device)
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=pad, num_beams=1)
        new = gen[:, enc["input_ids"].shape[1]:].cpu()
        for row in new:
            ids = row.tolist()
            first.append(int(ids[0]) if ids else -1)
            out_text.append(str(tok.decode(ids, skip_special_tokens=True)).strip())
    return out_text, first


def refusal_prob(logprobs: torch.Tensor, token_ids: Sequence[int]) -> list[float]:
    """P(first token in the refusal-start set) per prompt."""
    if not token_ids or logprobs.shape[0] == 0:
        return [0.0] * int(logprobs.shape[0])
    idx = torch.tensor(sorted(set(token_ids)), dtype=torch.long)
    return torch.logsumexp(logprobs[:, idx], dim=-1).exp().tolist()


def kl_rows(p_log: torch.Tensor, q_log: torch.Tensor) -> list[float]:
    """KL(p || q) per row, in nats."""
    if p_log.shape[0] == 0:
        return []
    kl = (p_log.exp() * (p_log - q_log)).sum(dim=-1)
    return kl.clamp_min(0.0).tolist()
