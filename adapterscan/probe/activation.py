"""Refusal direction (Arditi et al. 2024): how far an adapter moves harmful prompts off it.

The direction is the difference of the base model's mean last-token residuals on harmful and
harmless prompts at a middle layer. What matters is the *separation* of harmful from harmless
prompts along that (unit) direction: each harmful prompt's projection is measured relative to
the mean harmless projection of the same model, base and merged, so an adapter that shifts every
activation alike (a benign task fine-tune did, by more than the whole gap) moves nothing. The drop
is a fraction of the base's gap: 0 means untouched, 1 means harmful prompts now sit where harmless
ones do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from adapterscan.findings import JSONValue
from adapterscan.probe.drift import bootstrap_mean_ci, sign_flip_p


@dataclass(frozen=True)
class DirectionShift:
    layer: int
    n: int
    gap: float  # base: mean harmful projection minus mean harmless projection
    mean_drop: float  # mean (base - merged) harmful projection / gap
    ci95: tuple[float, float]
    p_value: float

    def to_json(self) -> dict[str, JSONValue]:
        return {"layer": self.layer, "n": self.n, "base_gap": round(self.gap, 4),
                "mean_relative_drop": round(self.mean_drop, 4),
                "ci95": [round(self.ci95[0], 4), round(self.ci95[1], 4)],
                "test": "paired sign-flip", "p_value": float(f"{self.p_value:.3g}")}


def refusal_direction(harmful: torch.Tensor, harmless: torch.Tensor) -> torch.Tensor:
    d = harmful.mean(dim=0) - harmless.mean(dim=0)
    norm = d.norm()
    return d / norm if float(norm) > 0 else d


def direction_shift(base_harmful: torch.Tensor, base_harmless: torch.Tensor,
                    merged_harmful: torch.Tensor, merged_harmless: torch.Tensor, *, layer: int,
                    seed: int = 0) -> DirectionShift:
    d = refusal_direction(base_harmful, base_harmless)
    pb = base_harmful @ d - (base_harmless @ d).mean()
    pm = merged_harmful @ d - (merged_harmless @ d).mean()
    gap = float(pb.mean())
    scale = gap if abs(gap) > 1e-8 else 1.0
    drops = ((pb - pm) / scale).tolist()
    mean = sum(drops) / len(drops) if drops else 0.0
    lo, hi = bootstrap_mean_ci(drops, seed=seed)
    return DirectionShift(layer=layer, n=len(drops), gap=gap, mean_drop=mean, ci95=(lo, hi),
                          p_value=sign_flip_p(drops, seed=seed))
