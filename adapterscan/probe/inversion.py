"""Trigger inversion: find strings nobody listed that switch the merged model's refusals off.

Greedy beam accretion over the whole vocabulary, one token at a time, at a fixed insertion
position (prefix, suffix or mid-sentence), up to `max_len` tokens. Each step ranks every token
for the new slot by the gradient of the merged model's first-token refusal log-probability with
respect to the slot's one-hot token (GCG, Zou et al. 2023), adds the tokens the weight analysis
points at, then scores the best `k` exactly: the merged model's refusal drop with the string,
minus the base's drop with the same string (BABI-style, arXiv 2509.16203), so strings that make
any model comply ("Sure", jailbreak phrases) rank below strings only the adapter reacts to.
Scoring inserts the decoded text and tokenizes it normally, exactly as confirmation does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from adapterscan.probe import signals as sg
from adapterscan.probe.triggers import insert

_MARK = "\u2063TRIGGER\u2063"  # an invisible separator no tokenizer merges with its neighbours


@dataclass(frozen=True)
class Found:
    text: str
    position: str
    merged_drop: float  # mean first-token refusal-probability drop on the merged model
    base_drop: float  # the same string's drop on the base
    tokens: int

    @property
    def score(self) -> float:
        return self.merged_drop - max(self.base_drop, 0.0)


@dataclass(frozen=True)
class InversionConfig:
    max_len: int = 6
    k: int = 16  # gradient-ranked tokens scored exactly per beam entry and step
    beam: int = 2
    positions: tuple[str, ...] = ("prefix", "suffix", "middle")
    budget_s: float = 40.0
    stop_at: float = 0.9  # a string that removes this much refusal needs no more tokens


class Inverter:
    """Search on one model whose adapter can be switched off (`disable_adapter`)."""

    def __init__(self, model: Any, tok: Any, device: torch.device, refusal_ids: Sequence[int],
                 prompts: Sequence[str], layer: int, batch_size: int,
                 base_off: Callable[[], contextlib.AbstractContextManager[Any]]) -> None:
        self.model, self.tok, self.device = model, tok, device
        self.ids = list(refusal_ids)
        self.prompts = list(prompts)
        self.layer, self.batch_size = layer, batch_size
        self.base_off = base_off
        self.allowed = _allowed_tokens(tok)
        self.embed = model.get_input_embeddings()
        self._clean_merged = self._mean_refusal(self.prompts)
        with self.base_off():
            self._clean_base = self._mean_refusal(self.prompts)

    # -- exact scoring ---------------------------------------------------------------------
    def _refusal(self, texts: Sequence[str]) -> list[float]:
        fwd = sg.forward(self.model, self.tok, texts, layer=self.layer,
                         batch_size=self.batch_size, device=self.device)
        return sg.refusal_prob(fwd.logprobs, self.ids)

    def _mean_refusal(self, texts: Sequence[str]) -> float:
        probs = self._refusal(texts)
        return sum(probs) / max(len(probs), 1)

    def _drops(self, strings: Sequence[str], position: str, *, base: bool) -> list[float]:
        texts = [insert(p, s, position) for s in strings for p in self.prompts]
        ctx = self.base_off() if base else contextlib.nullcontext()
        with ctx:
            probs = self._refusal(texts)
        clean = self._clean_base if base else self._clean_merged
        n = len(self.prompts)
        return [clean - sum(probs[i * n:(i + 1) * n]) / n for i in range(len(strings))]

    # -- gradient ranking --------------------------------------------------------------------
    def _pieces(self, position: str) -> list[tuple[list[int], list[int]]]:
        """Token ids left and right of the insertion point, per prompt."""
        out = []
        for p in self.prompts:
            rendered = sg.render(self.tok, [insert(p, _MARK, position)])[0]
            left, _, right = rendered.partition(_MARK)
            enc = self.tok([left, right], add_special_tokens=False)["input_ids"]
            out.append((list(enc[0]), list(enc[1])))
        return out

    def _top_tokens(self, pieces: Sequence[tuple[list[int], list[int]]], trigger: list[int],
                    k: int) -> list[int]:
        """Tokens whose one-hot gradient most lowers refusal at a new slot after `trigger`."""
        weight = self.embed.weight
        slot = len(trigger)
        seed = [*trigger, _filler(self.tok)]
        rows = [left + seed + right for left, right in pieces]
        starts = [len(left) for left, _ in pieces]
        ids, mask = sg.left_pad(rows, sg.pad_id(self.tok))
        width = int(ids.shape[1])
        ids, mask = ids.to(self.device), mask.to(self.device)
        onehot = torch.zeros((len(rows), weight.shape[0]), dtype=weight.dtype,
                             device=self.device, requires_grad=True)
        with torch.no_grad():
            for i, r in enumerate(rows):
                onehot[i, r[starts[i] + slot]] = 1.0
        embeds = self.embed(ids).detach()
        positions = [width - len(r) + starts[i] + slot for i, r in enumerate(rows)]
        slot_embeds = onehot @ weight
        rowsel = torch.arange(len(rows), device=self.device)
        embeds = embeds.clone()
        embeds[rowsel, torch.tensor(positions, device=self.device)] = slot_embeds
        pos_ids = (mask.cumsum(-1) - 1).clamp_min(0)
        with torch.enable_grad():
            out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos_ids,
                             use_cache=False, logits_to_keep=1)
            logp = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
            loss = torch.logsumexp(logp[:, self.ids], dim=-1).mean()
            (grad,) = torch.autograd.grad(loss, onehot)
        score = -grad.sum(0)
        score[~self.allowed.to(score.device)] = -torch.inf
        return [int(t) for t in torch.topk(score, min(k, int(self.allowed.sum()))).indices]

    # -- search -----------------------------------------------------------------------------
    def search(self, config: InversionConfig, hints: Sequence[int] = ()) -> list[Found]:
        """The best string per position, longest-improving first. The time budget stops strings
        growing past their first token; it never skips a position."""
        t0 = time.perf_counter()
        results: list[Found] = []
        for position in config.positions:
            pieces = self._pieces(position)
            beam: list[tuple[list[int], Found | None]] = [([], None)]
            best: Found | None = None
            for length in range(config.max_len):
                # The budget bounds how far strings grow, never which positions are searched:
                # every position gets its first whole-vocabulary step, however slow the machine.
                if length > 0 and time.perf_counter() - t0 > config.budget_s:
                    break
                pool: dict[str, tuple[list[int], float]] = {}
                for trigger, _ in beam:
                    cand = self._top_tokens(pieces, trigger, config.k)
                    if not trigger:
                        cand += [h for h in hints if h not in cand]
                    for t in cand:
                        ids = [*trigger, t]
                        text = str(self.tok.decode(ids)).strip()
                        if text and "\ufffd" not in text and text not in pool:
                            pool[text] = (ids, 0.0)
                texts = list(pool)
                merged = self._drops(texts, position, base=False)
                order = sorted(range(len(texts)), key=lambda i: -merged[i])[:2 * config.beam]
                base = self._drops([texts[i] for i in order], position, base=True)
                scored = [Found(texts[i], position, merged[i], b, len(pool[texts[i]][0]))
                          for i, b in zip(order, base, strict=True)]
                scored.sort(key=lambda f: -f.score)
                beam = [(pool[f.text][0], f) for f in scored[:config.beam]]
                step_best = scored[0] if scored else None
                if step_best is None or (best is not None and step_best.score
                                         <= best.score + 0.02):
                    break
                best = step_best
                if best.score >= config.stop_at:
                    break
            if best is not None:
                results.append(best)
        results.sort(key=lambda f: -f.score)
        return results


def _allowed_tokens(tok: Any) -> torch.Tensor:
    """Tokens a trigger may use: not special, decodes to visible text (a byte-level token that is
    part of a multi-byte character decodes to U+FFFD alone: no one can type it)."""
    n = len(tok)
    special = set(getattr(tok, "all_special_ids", []) or [])
    texts = tok.batch_decode([[i] for i in range(n)])
    return torch.tensor([i not in special and bool(t.strip()) and t.isprintable()
                         and "\ufffd" not in t
                         for i, t in enumerate(texts)], dtype=torch.bool)


def _filler(tok: Any) -> int:
    ids = tok("x", add_special_tokens=False)["input_ids"]
    return int(ids[0]) if ids else 0

