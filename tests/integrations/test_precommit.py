"""Committed file names → adapter folders (the pre-commit hook's mapping)."""

from __future__ import annotations

from pathlib import Path

from adapterscan.integrations.precommit import adapter_folders


def tree(root: Path, *files: str) -> Path:
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x")
    return root


def test_files_map_to_the_folder_holding_their_adapter_config(tmp_path: Path) -> None:
    root = tree(tmp_path, "a/adapter_config.json", "a/weights/adapter_model.safetensors",
                "b/lora.safetensors", "c/run/checkpoint-1/adapter_config.json")
    got = adapter_folders(["a/weights/adapter_model.safetensors", "b/lora.safetensors",
                           "c/run/checkpoint-1/adapter_config.json"], root)
    assert got == {Path("a"): ["a/weights/adapter_model.safetensors"],
                   Path("b"): ["b/lora.safetensors"],
                   Path("c/run/checkpoint-1"): ["c/run/checkpoint-1/adapter_config.json"]}


def test_nested_folders_fold_into_the_outer_one(tmp_path: Path) -> None:
    root = tree(tmp_path, "a/adapter_config.json", "a/ckpt/adapter_config.json")
    got = adapter_folders(["a/ckpt/adapter_config.json", "a/adapter_config.json"], root)
    assert got == {Path("a"): ["a/adapter_config.json", "a/ckpt/adapter_config.json"]}


def test_root_files_map_to_the_root_and_outside_paths_are_ignored(tmp_path: Path) -> None:
    root = tree(tmp_path, "lora.gguf", "x/y.safetensors")
    got = adapter_folders(["lora.gguf", "x/y.safetensors", "../evil.bin", "/etc/passwd"], root)
    assert got == {Path("."): ["lora.gguf", "x/y.safetensors"]}
