"""What the Hub announced: a listing whose file entries do not have the Hub API's types is a
FetchError, never a ValueError or TypeError out of the fetcher (issue 25)."""

from __future__ import annotations

from typing import Any

import pytest
from huggingface_hub.hf_api import ModelInfo, RepoFile

from adapterscan.emit import Emitter
from adapterscan.errors import FetchError
from adapterscan.fetch.hub_plan import announced_from
from adapterscan.rules.loader import load_ruleset

SHA = "c" * 64


def _file(**over: Any) -> RepoFile:
    entry = {"type": "file", "path": "adapter_model.safetensors", "size": 10, "oid": "b",
             "lfs": {"size": 10, "oid": SHA, "pointerSize": 130}}
    return RepoFile(**{**entry, **over})  # type: ignore[no-untyped-call]


def _siblings(**over: Any) -> Any:
    sib = {"rfilename": "adapter_model.safetensors", "size": 10, "blobId": "b",
           "lfs": {"size": 10, "sha256": SHA, "pointerSize": 130}}
    info = ModelInfo(id="o/n", siblings=[{**sib, **over}])  # type: ignore[no-untyped-call]
    return info.siblings


def _emit() -> Emitter:
    return Emitter(load_ruleset())


def test_a_well_typed_listing_is_announced() -> None:
    listed = announced_from([_file()], _siblings(), _emit())
    assert listed["adapter_model.safetensors"].size == 10
    assert listed["adapter_model.safetensors"].lfs_sha256 == SHA


@pytest.mark.parametrize("over", [{"size": "directory"}, {"size": -1}, {"size": True},
                                  {"path": 7}, {"oid": ["b"]}])
def test_a_malformed_tree_entry_is_a_fetch_error(over: dict[str, Any]) -> None:
    # Found by the fuzzer (issue 25): a size of "directory" raised ValueError from int().
    with pytest.raises(FetchError, match="tree listing announces a malformed file entry"):
        announced_from([_file(**over)], None, _emit())


@pytest.mark.parametrize("over", [{"size": "10"}, {"rfilename": ["a"]}, {"blobId": 3}])
def test_a_malformed_sibling_is_a_fetch_error(over: dict[str, Any]) -> None:
    with pytest.raises(FetchError, match="model info announces a malformed file entry"):
        announced_from([_file()], _siblings(**over), _emit())
