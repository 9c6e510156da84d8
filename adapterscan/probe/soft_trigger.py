"""Soft-trigger inversion: a few free input embeddings, fitted by gradient descent, that switch
the merged model's refusal off while the base keeps refusing.

Discrete searches (listed strings, token inversion, growth along the weight directions) miss a
trigger made of ordinary words: a decoy-trained or natural-language trigger gives a token-by-token
search no gradient to follow, and its words rank nowhere in the adapter's weight directions. A
continuous input has the gradient. The objective is differential: lower the merged model's
first-token refusal probability and keep the base's, on a few fitting prompts. Any model can be
jailbroken by a free embedding, so the fitted input says nothing by itself; what it does on
held-out prompts might. The hypothesis: an adapter that holds a refusal switch of its own lets
one input turn it off on prompts the fit never saw while the base, given the same input, still
refuses; on an adapter without one, the input fails on new prompts or breaks the base as well.

Measures only, and no rule reads it: benchmarks/study_soft_trigger.py measured the hypothesis on
both references and it does not hold (honest adapters reach the same held-out differentials as
backdoored ones; docs/probe.md, "Soft-trigger study").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from adapterscan.probe import signals as sg
from adapterscan.probe.triggers import insert

# Where the soft input goes, in the prompt text before the chat template: a marker no prompt
# holds; the rendered text is split on it and each side tokenized alone.
_MARK = "\u2063soft-trigger\u2063"


@dataclass(frozen=True)
class SoftConfig:
    slots: int = 4  # free embeddings, as many as a short trigger phrase has tokens
    steps: int = 24
    lr: float = 0.02  # Adam step, as a share of the mean token-embedding norm
    base_weight: float = 1.0  # how hard the fit keeps the base refusing
    position: str = "prefix"
    seed: int = 0


@dataclass(frozen=True)
class Fitted:
    """The fitted input and what it did to the fitting prompts at the last step."""

    vectors: torch.Tensor  # [slots, hidden], float32 on CPU
    merged_fit: float  # mean first-token refusal probability on the fitting prompts
    base_fit: float
    nearest: tuple[str, ...]  # the vocabulary token closest (cosine) to each slot: a reading aid


class SoftInputs:
    """Prompts rendered with the chat template and a slot run inserted at `position`, batched
    into input embeddings with left padding (as every probe batch)."""

    def __init__(self, model: Any, tok: Any, device: torch.device, slots: int,
                 position: str) -> None:
        self.model, self.tok, self.device = model, tok, device
        self.slots, self.position = slots, position
        self.embed = model.get_input_embeddings()

    def _pieces(self, prompt: str, with_slots: bool) -> tuple[list[int], list[int]]:
        text = insert(prompt, _MARK, self.position) if with_slots else prompt
        rendered = sg.render(self.tok, [text])[0]
        before, _, after = rendered.partition(_MARK)
        enc = self.tok([before, after], add_special_tokens=False)["input_ids"]
        return list(enc[0]), list(enc[1]) if with_slots else []

    def batch(self, prompts: Sequence[str], soft: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs_embeds, attention_mask); `soft` None renders the prompts without slots."""
        pieces = [self._pieces(p, soft is not None) for p in prompts]
        k = 0 if soft is None else self.slots
        pad = sg.pad_id(self.tok)
        # Slots hold the pad id until their embeddings are replaced below.
        ids, mask = sg.left_pad([[*a, *[pad] * k, *b] for a, b in pieces], pad)
        width = int(ids.shape[1])
        slot = torch.zeros((len(pieces), width), dtype=torch.bool)
        for r, (a, b) in enumerate(pieces):
            start = width - (len(a) + k + len(b)) + len(a)
            slot[r, start:start + k] = True
        embeds = self.embed(ids.to(self.device))
        if soft is not None:
            fill = soft.to(embeds.dtype).to(self.device).repeat(len(pieces), 1)
            embeds = embeds.masked_scatter(slot.to(self.device)[..., None], fill)
        return embeds, mask.to(self.device)

    def refusal_logp(self, prompts: Sequence[str], soft: torch.Tensor | None,
                     refusal_ids: Sequence[int]) -> torch.Tensor:
        """log P(first answer token starts a refusal), per prompt; differentiable in `soft`."""
        embeds, mask = self.batch(prompts, soft)
        pos = (mask.cumsum(-1) - 1).clamp_min(0)
        out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos,
                         use_cache=False, logits_to_keep=1)
        logp = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        idx = torch.tensor(sorted(set(refusal_ids)), dtype=torch.long, device=logp.device)
        return torch.logsumexp(logp[:, idx], dim=-1)

    @torch.inference_mode()
    def refusal_probs(self, prompts: Sequence[str], soft: torch.Tensor | None,
                      refusal_ids: Sequence[int], batch_size: int) -> list[float]:
        out: list[float] = []
        for i in range(0, len(prompts), batch_size):
            lp = self.refusal_logp(prompts[i:i + batch_size], soft, refusal_ids)
            out += lp.exp().cpu().tolist()
        return out


def fit(inputs: SoftInputs, prompts: Sequence[str], refusal_ids: Sequence[int],
        base_off: Callable[[], contextlib.AbstractContextManager[Any]],
        config: SoftConfig) -> Fitted:
    """Fit the slots on `prompts` (harmful ones both models refuse): merged refusal down, base
    refusal kept. Slots start at random vocabulary embeddings and stay within the norm of real
    token embeddings (99th percentile), so the input stays token-like."""
    weight = inputs.embed.weight.detach()
    norms = weight.float().norm(dim=-1)
    cap = float(torch.quantile(norms, 0.99))
    gen = torch.Generator().manual_seed(config.seed)
    start = torch.randint(0, int(weight.shape[0]), (config.slots,), generator=gen)
    soft = weight[start.to(weight.device)].float().cpu().clone().requires_grad_(True)
    opt = torch.optim.Adam([soft], lr=config.lr * float(norms.mean()))
    merged_fit = base_fit = 1.0
    with torch.enable_grad():
        for _ in range(config.steps):
            opt.zero_grad()
            merged = inputs.refusal_logp(prompts, soft, refusal_ids)
            with base_off():
                base = inputs.refusal_logp(prompts, soft, refusal_ids)
            loss = merged.mean() - config.base_weight * base.mean()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            with torch.no_grad():
                soft.mul_(torch.clamp(cap / soft.norm(dim=-1, keepdim=True), max=1.0))
            merged_fit = float(merged.detach().exp().mean())
            base_fit = float(base.detach().exp().mean())
    vectors = soft.detach().clone()
    unit = torch.nn.functional.normalize(weight.float().cpu(), dim=-1)
    near = (torch.nn.functional.normalize(vectors, dim=-1) @ unit.T).argmax(dim=-1)
    nearest = tuple(str(inputs.tok.decode([int(t)])) for t in near)
    return Fitted(vectors, merged_fit, base_fit, nearest)
