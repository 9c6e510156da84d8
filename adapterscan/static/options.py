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
class DeltaOptions:
    """A full checkpoint scanned against its base (weights.base_dir): static/delta/."""

    # Write the equivalent PEFT adapter (adapter_config.json + adapter_model.safetensors) here.
    recover_dir: Path | None = None
    # What the recovered adapter's config names as its base (the resolved base's name and sha).
    base_name: str | None = None
    base_revision: str | None = None
    sketch: int = 20  # the first sketch's width: ranks up to sketch − 4 found in two passes
    max_sketch: int = 96  # the second sketch's, when the first saw no fall in the spectrum
    power_iters: int = 1


@dataclass(frozen=True)
class StaticOptions:
    limits: StaticLimits = field(default_factory=StaticLimits)
    weights: WeightOptions = field(default_factory=WeightOptions)
    delta: DeltaOptions = field(default_factory=DeltaOptions)
