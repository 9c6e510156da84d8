"""The one extension table: what the fetcher downloads whole covers everything the static stage
analyses by name, and the inventory's name classes come from the same sets."""

from __future__ import annotations

import pytest

from adapterscan import file_kinds as fk
from adapterscan.fetch.hub_plan import needs_full_bytes
from adapterscan.static.inventory.sniff import by_name
from adapterscan.static.model import FileClass


def test_analysed_covers_weights_pickles_zips_and_arrays() -> None:
    assert fk.WEIGHTS_EXT | fk.PICKLE_EXT | fk.ZIP_EXT | fk.NPY_EXT <= fk.ANALYSED_EXT
    assert fk.TORCH_PICKLE_EXT <= fk.WEIGHTS_EXT
    assert not {".joblib", ".dill", ".npz", ".npy", ".zip"} & fk.WEIGHTS_EXT


@pytest.mark.parametrize("name", ["x.dill", "a/B.ZIP", "w.npz", "w.npy", "adapter_model.bin",
                                  "m.gguf", "m.safetensors", "t.joblib", ".bin"])
def test_hub_fetches_analysed_files_whole(name: str) -> None:
    assert needs_full_bytes(name)


@pytest.mark.parametrize("name", ["README.md", "x.tar", "tokenizer.json", "bin"])
def test_hub_caps_other_files(name: str) -> None:
    assert not needs_full_bytes(name)


@pytest.mark.parametrize(("name", "cls"), [
    ("a.dill", FileClass.PICKLE), ("a.pt", FileClass.PICKLE), ("a.npz", FileClass.ZIP),
    ("a.zip", FileClass.ZIP), ("a.npy", FileClass.OTHER_DATA), ("a.gguf", FileClass.GGUF),
    ("a.safetensors", FileClass.SAFETENSORS), ("t.j2", FileClass.CHAT_TEMPLATE)])
def test_inventory_names_from_the_table(name: str, cls: FileClass) -> None:
    assert by_name(name)[0] is cls


def test_ext_of() -> None:
    assert fk.ext_of("a/b.C.PT") == ".pt"
    assert fk.ext_of(".gitignore") == ""
