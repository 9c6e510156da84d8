"""The fetch stage's interface: a source becomes a local, pinned tree of entries."""

from __future__ import annotations

from typing import Protocol

from adapterscan.emit import Emitter
from adapterscan.source import Entry, EntryType, FetchedSource, FetchLimits

__all__ = ["Entry", "EntryType", "FetchLimits", "FetchedSource", "Fetcher"]


class Fetcher(Protocol):
    def fetch(self, emit: Emitter) -> FetchedSource:
        """Make the source local. Raise FetchError when that is impossible."""
        ...
