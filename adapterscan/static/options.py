"""The static stage's options, kept free of numpy so that building them (the CLI does, before a
scan starts) costs no heavy import."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adapterscan.static.limits import StaticLimits


@dataclass(frozen=True)
class WeightOptions:
    # A trusted HF model folder with *.safetensors weights: relative updates, trigger tokens.
    base_dir: Path | None = None
    # The unaligned twin of base_dir (same shapes): enables the Safe-LoRA alignment check.
    unaligned_dir: Path | None = None
    # A calibration bank (`adapterscan baseline build`); None uses DEFAULT_BANK when present.
    baseline: Path | None = None
    use_default_baseline: bool = True
    trigger_top_k: int = 20
    trigger_layers: int = 1


@dataclass(frozen=True)
class StaticOptions:
    limits: StaticLimits = field(default_factory=StaticLimits)
    weights: WeightOptions = field(default_factory=WeightOptions)
