"""The pre-commit hook's mapping from committed file names to adapter folders.

pre-commit passes the staged files that match the hook's `files` pattern (weights, pickles,
`adapter_config.json`), relative to the repository root. An adapter is a folder, so each file
maps to the nearest folder at or above it (never above the repository root) that holds an
`adapter_config.json` (the PEFT layout, nested checkpoints included: `run/checkpoint-500/`
has its own), else to its own folder (a kohya / GGUF file with no config). A folder inside
another selected folder is dropped: scanning the outer one reads it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath


def adapter_folders(files: Iterable[str], root: Path) -> dict[Path, list[str]]:
    """Adapter folder (relative to `root`) → the given files it covers, in a stable order."""
    chosen: dict[Path, list[str]] = {}
    for name in files:
        rel = PurePosixPath(name.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts:
            continue  # pre-commit passes repository-relative paths only
        folder = _owner(Path(*rel.parent.parts) if rel.parent.parts else Path("."), root)
        chosen.setdefault(folder, []).append(name)
    outer = sorted(chosen, key=lambda p: len(p.parts) if p != Path(".") else 0)
    kept: dict[Path, list[str]] = {}
    for folder in outer:
        parent = next((k for k in kept if k == Path(".") or k in folder.parents), None)
        if parent is None:
            kept[folder] = list(chosen[folder])
        else:
            kept[parent] += chosen[folder]
    return dict(sorted(kept.items()))


def _owner(folder: Path, root: Path) -> Path:
    """The nearest folder from `folder` up to the root with an adapter_config.json."""
    for candidate in (folder, *folder.parents):
        if (root / candidate / "adapter_config.json").is_file():
            return candidate
    return folder
