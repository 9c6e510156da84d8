"""Reuse of a base model's measurements across many adapters (the demo, batches, benchmarks).

Measuring the base (first-token passes and greedy generation on every suite) is the same work
for every adapter scanned against it. A `BaseCache`, owned and passed by the caller, keeps those
measurements keyed by everything that changes them: the base's files (path, size, mtime, and the
digests the fetch stage took), the prompt suites, the judge, the options that shape the
measurement and the versions of the code that measures. Weights are reloaded per
scan (cheap next to measuring), so no adapter ever sees another's state. `base_store.py` keeps
the same measurements on disk, across processes (the CLI's default).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


def base_key(folder: Path, parts: dict[str, Any]) -> str:
    """A key for one base folder's files and the measurement settings in `parts`."""
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                   for p in folder.iterdir() if p.is_file())
    blob = json.dumps({"folder": str(folder.resolve()), "files": files, **parts},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class BaseStore(Protocol):
    """What the runner needs of a cache of base measurements: `BaseCache` (in memory) or
    `base_store.DiskBaseCache` (on disk)."""

    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...


@dataclass
class BaseCache:
    """Caller-owned: one per run over many adapters; never shared across processes."""

    items: dict[str, Any] = field(default_factory=dict)
    hits: int = 0

    def get(self, key: str) -> Any | None:
        found = self.items.get(key)
        if found is not None:
            self.hits += 1
        return found

    def put(self, key: str, value: Any) -> None:
        self.items[key] = value
