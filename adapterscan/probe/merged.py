"""What the probe compares with the base: an adapter merged into it, or a full checkpoint.

The pipeline chooses: an adapter is injected into the loaded base and merged in place (one
copy of the weights); a full checkpoint that the delta stage matched to the base (same tensor
names, shapes and vocabulary) is loaded as it is, its weights already holding whatever was
merged or fine-tuned into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapterscan.static.formats.model import AdapterModel


@dataclass(frozen=True)
class AdapterMerge:
    """The adapter at `root` (PEFT, or MLX / GGUF through `adapter`) merged into the base."""

    root: Path
    adapter: AdapterModel | None = None


@dataclass(frozen=True)
class CheckpointLoad:
    """The full checkpoint in `folder`, loaded like the base (safetensors only, no remote code)."""

    folder: Path


MergedModel = AdapterMerge | CheckpointLoad
