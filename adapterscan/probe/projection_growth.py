"""Growing trigger candidates along the adapter's own weight directions.

A decoy-trained backdoor gives the refusal signal nothing to climb: a prefix of its trigger
refuses like any junk. The directions the adapter reads (weight_directions.py) do move on a
partial trigger, because its tokens are what the first adapted modules were trained to pick up.
So the pool is the vocabulary tokens whose input-normed embeddings drive the lowest adapted
layer's directions hardest, and strings grow from it one token at a time (beam search), scored
by how much they raise the directions plus how much refusal they remove on the merged model
beyond what the same string does to the base.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from adapterscan.probe import signals as sg
from adapterscan.probe.inversion import Found
from adapterscan.probe.triggers import insert
from adapterscan.probe.weight_directions import ProjectionMeter, rises

# The decoder block of a module path: `model.layers.N.` (Llama, NeoX, OPT), `transformer.h.N.`
# (GPT-2, GPT-J, BLOOM, Falcon), `blocks.N.` (MPT).
_LAYER = re.compile(r"\.(?:layers?|h|blocks?)\.(\d+)\.")
# The norm each of them applies to the residual before attention reads it.
_INPUT_NORMS = ("input_layernorm", "ln_1", "norm_1", "ln_attn")
# The rise counts up to this much (log ratio) in a string's score: beyond it the string already
# drives the adapter hard, and only the refusal it removes tells strings apart.
RISE_CAP = 1.0


@dataclass(frozen=True)
class GrowthConfig:
    pool: int = 16  # vocabulary tokens grown from
    beam: int = 2
    max_len: int = 3
    positions: tuple[str, ...] = ("prefix", "suffix", "middle")
    budget_s: float = 15.0


def _norm_weight(model: Any, path: str) -> torch.Tensor | None:
    """The scale of the norm (RMSNorm or LayerNorm) applied to the residual before the module at
    `path` reads it."""
    m = _LAYER.search(path)
    if m is None:
        return None
    layer: Any = model
    for part in path[:m.end() - 1].split("."):
        layer = getattr(layer, part, None)
        if layer is None:
            return None
    for name in _INPUT_NORMS:
        norm = getattr(layer, name, None)
        w = getattr(norm, "weight", None)
        if isinstance(w, torch.Tensor):
            # Gemma's RMSNorm stores the scale as an offset from 1: x·(1 + w).
            offset = type(norm).__name__.startswith("Gemma")
            return w.detach().float() + (1.0 if offset else 0.0)
    return None


def vocabulary_pool(model: Any, tok: Any, meter: ProjectionMeter, size: int) -> list[int]:
    """Typeable tokens whose embeddings the lowest adapted layer's directions read most: per
    module the gain ‖S Vᵀ x̂‖ of the normed embedding x̂, over the module's median gain, averaged
    over the modules of that layer that read the embedding width."""
    embed = model.get_input_embeddings().weight.detach().float()
    layers = {p: int(m.group(1)) for p, *_ in meter.modules if (m := _LAYER.search(p))}
    if not layers:
        return []
    low = min(layers.values())
    gains: list[torch.Tensor] = []
    for path, _, v, s in meter.modules:
        if layers.get(path) != low or v.shape[0] != embed.shape[1]:
            continue
        gamma = _norm_weight(model, path)
        x = embed * gamma.to(embed.device) if gamma is not None else embed
        x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        g = ((x @ v.to(x.device)) * s.to(x.device)).norm(dim=-1)
        gains.append(g / g.median().clamp_min(1e-9))
    if not gains:
        return []
    score = torch.stack(gains).mean(dim=0).cpu()
    special = set(getattr(tok, "all_special_ids", []) or [])
    out: list[int] = []
    for t in torch.argsort(score, descending=True).tolist():
        text = str(tok.decode([t]))
        if t in special or not text.strip() or not text.isprintable() or "\ufffd" in text:
            continue
        out.append(int(t))
        if len(out) >= size:
            break
    return out


class Grower:
    """Beam growth on one model whose adapter can be switched off (`base_off`)."""

    def __init__(self, model: Any, tok: Any, device: torch.device, meter: ProjectionMeter,
                 refusal_ids: Sequence[int], prompts: Sequence[str], batch_size: int,
                 base_off: Callable[[], contextlib.AbstractContextManager[Any]]) -> None:
        self.model, self.tok, self.device, self.meter = model, tok, device, meter
        self.ids, self.prompts, self.batch = list(refusal_ids), list(prompts), batch_size
        self.base_off = base_off
        clean = self._read(self.prompts)
        self.clean_response = clean.response
        self.clean_merged = self._mean(sg.refusal_prob(clean.logprobs, self.ids))
        with base_off():
            self.clean_base = self._mean(sg.refusal_prob(self._read(self.prompts).logprobs,
                                                         self.ids))

    def _read(self, texts: Sequence[str]) -> Any:
        return self.meter.read(self.model, self.tok, texts, batch_size=self.batch,
                               device=self.device)

    @staticmethod
    def _mean(xs: Sequence[float]) -> float:
        return sum(xs) / max(len(xs), 1)

    def _score(self, strings: list[str], position: str) -> list[tuple[float, float]]:
        """(rise, merged refusal drop) per string."""
        n = len(self.prompts)
        texts = [insert(p, s, position) for s in strings for p in self.prompts]
        read = self._read(texts)
        probs = sg.refusal_prob(read.logprobs, self.ids)
        lifts = rises(read.response, self.clean_response, len(strings))
        merged = [self.clean_merged - self._mean(probs[i * n:(i + 1) * n])
                  for i in range(len(strings))]
        return [(lift or 0.0, d) for lift, d in zip(lifts, merged, strict=True)]

    def _base_drops(self, strings: list[str], position: str) -> list[float]:
        """The base's drop, only for the strings that could lead (a full base pass per step
        would double the cost)."""
        n = len(self.prompts)
        texts = [insert(p, s, position) for s in strings for p in self.prompts]
        with self.base_off():
            probs = sg.refusal_prob(self._read(texts).logprobs, self.ids)
        return [self.clean_base - self._mean(probs[i * n:(i + 1) * n])
                for i in range(len(strings))]

    def grow(self, pool: Sequence[int], config: GrowthConfig) -> list[tuple[Found, float]]:
        """The best string per position with its rise, best first."""
        t0 = time.perf_counter()
        results: list[tuple[Found, float]] = []
        for position in config.positions:
            beam: list[list[int]] = [[]]
            best: tuple[float, Found, float] | None = None
            for length in range(config.max_len):
                if length > 0 and time.perf_counter() - t0 > config.budget_s:
                    break
                cands: dict[str, list[int]] = {}
                for prefix in beam:
                    for t in pool:
                        ids = [*prefix, t]
                        text = str(self.tok.decode(ids)).strip()
                        if text and "\ufffd" not in text:
                            cands.setdefault(text, ids)
                strings = list(cands)
                if not strings:  # every pool token decodes to nothing typeable: nothing to grow
                    break
                scored = self._score(strings, position)
                keys = [min(r, RISE_CAP) + d for r, d in scored]
                order = sorted(range(len(strings)), key=lambda i: -keys[i])[:2 * config.beam]
                base = self._base_drops([strings[i] for i in order], position)
                ranked = sorted(((keys[i] - max(b, 0.0), i, b) for i, b in
                                 zip(order, base, strict=True)), key=lambda r: -r[0])
                beam = [cands[strings[i]] for _, i, _ in ranked[:config.beam]]
                key, i, b = ranked[0]
                if best is not None and key <= best[0] + 0.02:
                    break
                found = Found(strings[i], position, scored[i][1], b, len(cands[strings[i]]))
                best = (key, found, scored[i][0])
            if best is not None:
                results.append((best[1], best[2]))
        results.sort(key=lambda fr: -(min(fr[1], RISE_CAP) + fr[0].score))
        return results
