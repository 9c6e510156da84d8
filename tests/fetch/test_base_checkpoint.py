"""`--base auto` on a full checkpoint: the base its model card or config.json names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapterscan.fetch.base_model import BaseNotFound, named_base


def _folder(tmp_path: Path, card: str | None, config: dict[str, object]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(config))
    if card is not None:
        (tmp_path / "README.md").write_text(card)
    return tmp_path


def test_model_card_base_model_wins(tmp_path: Path) -> None:
    root = _folder(tmp_path, "---\nlicense: mit\nbase_model: owner/base\n---\ntext\n",
                   {"_name_or_path": "other/name"})
    assert named_base(root) == ("owner/base", None, "README.md")


def test_model_card_list_form(tmp_path: Path) -> None:
    root = _folder(tmp_path, "---\nbase_model:\n- 'owner/base'\ntags: [x]\n---\n", {})
    assert named_base(root)[0] == "owner/base"


def test_config_name_or_path_is_the_fallback(tmp_path: Path) -> None:
    root = _folder(tmp_path, "no front matter\nbase_model: ignored\n",
                   {"_name_or_path": "owner/base"})
    assert named_base(root) == ("owner/base", None, "config.json")


def test_nothing_named_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BaseNotFound, match="names no base model"):
        named_base(_folder(tmp_path, None, {"model_type": "llama"}))


def test_an_adapter_folder_reads_adapter_config(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": "owner/base", "revision": "main"}))
    assert named_base(tmp_path) == ("owner/base", "main", "adapter_config.json")
