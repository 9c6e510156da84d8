"""The bundled tiny reference chat models (aligned and unaligned) and their build manifest.

`reference_dir()` is the shipped Hugging Face model folder; `export_reference()` copies it to a
folder of the user's choice. Both are plain files: no torch import here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from adapterscan.errors import AdapterScanError

# The package folder: the bundled models and their manifest (`reference build` writes here).
REFERENCE_DIR = Path(__file__).resolve().parent
# Reference v3's safety adapter (a LoRA for SmolLM2-135M-Instruct; `python -m
# adapterscan.training.v3 build` writes it), merged into the pinned base by `base fetch`.
V3_ADAPTER_DIR = REFERENCE_DIR / "v3"
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json")


def reference_dir(unaligned: bool = False) -> Path:
    """The shipped model folder (aligned by default); raises if the package lacks it."""
    path = REFERENCE_DIR / ("unaligned" if unaligned else "aligned")
    if not (path / "model.safetensors").is_file():
        raise AdapterScanError(f"bundled reference model missing at {path}; "
                               "run `adapterscan reference build`")
    return path


def manifest() -> dict[str, Any]:
    """The build manifest: measured refusal rates, training settings and per-file sha256."""
    data: dict[str, Any] = json.loads((REFERENCE_DIR / "manifest.json").read_text())
    return data


def export_reference(dest: Path, *, unaligned: bool = False) -> Path:
    """Copy the reference model to `dest` (created; must be empty if it exists). Returns dest."""
    src = reference_dir(unaligned)
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise AdapterScanError(f"{dest} exists and is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file():
            shutil.copyfile(f, dest / f.name)
    return dest
