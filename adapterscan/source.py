"""A source made local: the tree of entries every stage reads (the fetch stage produces it)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class EntryType(enum.Enum):
    FILE = "file"
    SYMLINK = "symlink"
    OTHER = "other"  # device, fifo, socket: never read


@dataclass(frozen=True)
class Entry:
    """One item of the source tree. `path` is POSIX and relative to the source root."""

    path: str
    type: EntryType
    size: int
    link_target: str | None = None


@dataclass(frozen=True)
class FetchLimits:
    max_files: int = 10_000
    max_file_bytes: int = 64 * 1024**3
    max_total_bytes: int = 256 * 1024**3


@dataclass(frozen=True)
class FetchedSource:
    """A source made local and pinned.

    `root` holds the bytes the analyzers read. `expected_sha256` holds digests announced by the
    origin (the Hub's LFS sha256) that were already checked against the downloaded bytes; local
    sources have none and are hashed by the pipeline. `remote_only` lists entries that were
    inventoried but deliberately not downloaded (their analysis happened on ranged reads or not at
    all, and the analyzers must not look for them under `root`).
    """

    source: str
    kind: str  # "local" | "hub"
    root: Path
    entries: tuple[Entry, ...]
    revision: str | None = None
    repo: str | None = None
    endpoint: str | None = None
    expected_sha256: Mapping[str, str] = field(default_factory=dict)
    remote_only: frozenset[str] = frozenset()
    base_model_hint: str | None = None

    @property
    def full_checkpoint(self) -> bool:
        """A whole model (config.json and top-level .safetensors weights) rather than an
        adapter (no adapter_config.json): scanned as a delta against its base."""
        top = {e.path for e in self.entries if e.type is EntryType.FILE and "/" not in e.path}
        return "config.json" in top and "adapter_config.json" not in top and \
            any(p.endswith(".safetensors") for p in top)
