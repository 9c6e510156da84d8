"""The weight-direction signal: how strongly a prompt drives the input subspace the adapter reads.

For a LoRA module ΔW = s·B·A is known exactly. Its right-singular directions (a basis of the rows
of A, ordered by singular value) are what the adapter reads from the module's input: a prompt
that carries or approaches the trigger drives them harder than a clean prompt, even when a
decoy-trained backdoor does not fire yet ("Watch the Weights", arXiv 2508.00161). Per module and
prompt the response is ‖S_k V_kᵀ x‖ / ‖x‖ at the token where it is largest (x the module's input,
k the top directions), read with forward pre-hooks in the same batched pass that yields the
first-token distribution. The directions come from the factors alone: QR of B and Aᵀ, then the
SVD of an r×r matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from adapterscan.probe import signals as sg

TOP_DIRECTIONS = 4
# Rise = mean log response ratio of the modules that moved most: a trigger drives a few modules
# hard (a 2.8x rise in one down_proj of a code-tag backdoor) where junk moves many a little.
TOP_MODULES = 2


@dataclass(frozen=True)
class Reading:
    """One batched pass: next-token log-probabilities and per-module responses."""

    logprobs: torch.Tensor  # [n, vocab] float32 on CPU
    response: torch.Tensor  # [n, modules] float32 on CPU


def _directions(module: Any, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    a = module.lora_A[name].weight.detach().float()
    b = module.lora_B[name].weight.detach().float()
    if a.ndim != 2 or b.ndim != 2:
        return None
    scale = float(module.scaling[name])
    qa, ra = torch.linalg.qr(a.T)  # a.T = qa·ra: [in, r], [r, r]
    _, rb = torch.linalg.qr(b)  # ΔW = s·qb·rb·raᵀ·qaᵀ: qb does not change the singular values
    _, sv, vh = torch.linalg.svd(scale * rb @ ra.T)
    k = min(TOP_DIRECTIONS, int(sv.shape[0]))
    return (qa @ vh.T)[:, :k].contiguous(), sv[:k].contiguous()


class ProjectionMeter:
    """Reads, per LoRA module of `model`, how hard each prompt drives the adapter's directions."""

    def __init__(self, model: Any) -> None:
        self.modules: list[tuple[str, Any, torch.Tensor, torch.Tensor]] = []
        for path, module in model.named_modules():
            lora_a = getattr(module, "lora_A", None)
            names = getattr(module, "active_adapters", None) or []
            if not isinstance(lora_a, torch.nn.ModuleDict) or not names:
                continue
            name = names[0]
            if name not in lora_a or not isinstance(lora_a[name], torch.nn.Linear):
                continue
            found = _directions(module, name)
            if found is not None:
                self.modules.append((path, module, *found))
        self._mask: torch.Tensor | None = None
        self._out: dict[int, torch.Tensor] = {}

    @property
    def names(self) -> list[str]:
        return [m[0] for m in self.modules]

    def _hook(self, i: int, v: torch.Tensor, s: torch.Tensor) -> Any:
        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            x = args[0]
            if not isinstance(x, torch.Tensor) or x.ndim != 3 or self._mask is None:
                return
            x = x.float()
            vv, ss = v.to(x.device), s.to(x.device)
            r = ((x @ vv) * ss).norm(dim=-1) / x.norm(dim=-1).clamp_min(1e-6)
            self._out[i] = r.masked_fill(self._mask == 0, 0.0).amax(dim=-1).cpu()
        return hook

    @contextmanager
    def _hooks(self) -> Iterator[None]:
        handles = [m.register_forward_pre_hook(self._hook(i, v, s))
                   for i, (_, m, v, s) in enumerate(self.modules)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    @torch.inference_mode()
    def read(self, model: Any, tok: Any, prompts: Sequence[str], *, batch_size: int,
             device: torch.device) -> Reading:
        """First-token log-probabilities and module responses for each prompt, batched."""
        texts = sg.render(tok, prompts)
        lps: list[torch.Tensor] = []
        rs: list[torch.Tensor] = []
        with self._hooks():
            for i in range(0, len(texts), batch_size):
                enc = sg.encode(tok, texts[i:i + batch_size], device)
                self._mask, self._out = enc["attention_mask"], {}
                pos = (enc["attention_mask"].long().cumsum(-1) - 1).clamp_min(0)
                out = model(**enc, position_ids=pos, use_cache=False, logits_to_keep=1)
                lps.append(torch.log_softmax(out.logits[:, -1, :].float(), dim=-1).cpu())
                n = enc["input_ids"].shape[0]
                rs.append(torch.stack([self._out.get(j, torch.zeros(n))
                                       for j in range(len(self.modules))], dim=-1)
                          if self.modules else torch.zeros(n, 0))
        self._mask, self._out = None, {}
        if not lps:
            return Reading(torch.zeros(0, 1), torch.zeros(0, len(self.modules)))
        return Reading(torch.cat(lps), torch.cat(rs))


def rise(with_string: torch.Tensor, clean: torch.Tensor) -> float | None:
    """How much a string raised the adapter's directions over the same prompts without it: mean
    log ratio (of per-module means over the prompts) of the `TOP_MODULES` modules that rose most.
    None when there is nothing to read (no LoRA module, no prompt)."""
    if with_string.numel() == 0 or clean.numel() == 0:
        return None
    ratio = with_string.mean(dim=0).clamp_min(1e-9) / clean.mean(dim=0).clamp_min(1e-9)
    top = torch.topk(ratio.log(), min(TOP_MODULES, int(ratio.shape[0]))).values
    value = float(top.mean())
    return value if math.isfinite(value) else None


def rises(with_strings: torch.Tensor, clean: torch.Tensor, n_strings: int) -> list[float | None]:
    """`rise` for each of `n_strings` consecutive blocks of rows (one block per string)."""
    if n_strings == 0:
        return []
    n = with_strings.shape[0] // n_strings
    return [rise(with_strings[i * n:(i + 1) * n], clean) for i in range(n_strings)]
