"""Local folders: walk without following links, bounded in entry count, nothing read yet."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.errors import FetchError
from adapterscan.source import Entry, EntryType, FetchedSource, FetchLimits


class LocalFetcher:
    def __init__(self, path: Path, limits: FetchLimits | None = None) -> None:
        self.path = path
        self.limits = limits or FetchLimits()

    def fetch(self, emit: Emitter) -> FetchedSource:
        root = self.path
        try:
            st = os.stat(root)
        except OSError as exc:
            raise FetchError(f"{root}: cannot open source: {exc.strerror}",
                             hint="pass a folder, hf://owner/repo[@rev] or owner/repo[@rev]"
                             ) from exc
        if not stat.S_ISDIR(st.st_mode):
            raise FetchError(f"{root}: not a folder",
                             hint="scan the adapter's folder, not one of its files")
        entries = walk(root, self.limits, emit)
        return FetchedSource(source=str(self.path), kind="local", root=root.resolve(),
                             entries=entries)


def walk(root: Path, limits: FetchLimits, emit: Emitter) -> tuple[Entry, ...]:
    """List every entry under root (links are listed, never followed), up to limits.max_files."""
    entries: list[Entry] = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(root / rel_dir if rel_dir else root) as it:
                items = sorted(it, key=lambda d: d.name)
        except OSError as exc:
            emit.skip(rel_dir or ".", f"cannot list folder: {exc.strerror}")
            continue
        for item in items:
            rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
            if len(entries) >= limits.max_files:
                emit.skip(rel_dir or ".", f"more than {limits.max_files} entries; the rest "
                          "were not inventoried (raise --max-files to scan them)")
                return tuple(entries)
            try:
                st = item.stat(follow_symlinks=False)
            except OSError as exc:
                emit.skip(rel, f"cannot stat: {exc.strerror}")
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(item.path)
                except OSError:
                    target = None
                _check_resolves(item.path, rel, emit)
                entries.append(Entry(rel, EntryType.SYMLINK, 0, target))
            elif stat.S_ISDIR(st.st_mode):
                if rel == ".git" or rel.endswith("/.git"):
                    # Version-control internals are not shipped to loaders; still listed.
                    entries.append(Entry(rel, EntryType.OTHER, 0))
                    continue
                stack.append(rel)
            elif stat.S_ISREG(st.st_mode):
                entries.append(Entry(rel, EntryType.FILE, st.st_size))
            else:
                entries.append(Entry(rel, EntryType.OTHER, 0))
    entries.sort(key=lambda e: e.path)
    return tuple(entries)


def _check_resolves(path: str, rel: str, emit: Emitter) -> None:
    """A link that never resolves (a loop, a missing target) has content nobody can vet."""
    try:
        os.stat(path)
    except OSError as exc:
        emit.skip(rel, f"symlink does not resolve: {exc.strerror}")
