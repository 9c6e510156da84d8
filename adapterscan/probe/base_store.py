"""The base's measurements kept on disk, so that many scans against one base pay for it once.

Measuring the base (first-token passes and greedy generation on every suite) costs minutes on a
real model on a CPU, and it is the same for every adapter. `DiskBaseCache` keeps it in the user
cache, keyed by the base's file digests (as resolved and hashed by the fetch stage), the prompt
suites, the judge and every option that shapes the measurement. Tensors go to safetensors and the
rest to JSON: nothing in this cache is ever unpickled. An entry that cannot be read, or whose
content does not have the shape the key promises, is a miss (measured again), never an error.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, get_args

from adapterscan.probe import signals as sg
from adapterscan.probe.judge import Label
from adapterscan.probe.records import Measured

FORMAT = 1
META = "meta.json"
TENSORS = "tensors.safetensors"
MAX_META_BYTES = 64 * 1024 * 1024
_LABELS = frozenset(get_args(Label))


def default_root() -> Path:
    """Where the CLI keeps base measurements (ADAPTERSCAN_PROBE_CACHE_DIR, else under
    XDG_CACHE_HOME)."""
    if chosen := os.environ.get("ADAPTERSCAN_PROBE_CACHE_DIR"):
        return Path(chosen)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "adapterscan" / "probe-base"


class DiskBaseCache:
    """A `BaseStore` (probe/session.py) whose entries outlive the process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits = 0

    def get(self, key: str) -> tuple[Measured, list[int]] | None:
        folder = self.root / key
        if not (folder / META).is_file():
            return None
        from safetensors import SafetensorError

        try:
            found = _read(folder)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError):
            return None
        if found is not None:
            self.hits += 1
        return found

    def put(self, key: str, value: Any) -> None:
        measured, ids = value
        self.root.mkdir(parents=True, exist_ok=True)
        # Written beside, then renamed: a reader never sees half an entry.
        tmp = Path(tempfile.mkdtemp(prefix=".put-", dir=self.root))
        try:
            _write(tmp, measured, ids)
            target = self.root / key
            if target.exists():
                shutil.rmtree(target)
            tmp.replace(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _write(folder: Path, measured: Measured, ids: list[int]) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for suite, out in measured.fwd.items():
        tensors[f"{suite}/logprobs"] = out.logprobs.contiguous()
        tensors[f"{suite}/hidden"] = out.hidden.contiguous()
    save_file(tensors, str(folder / TENSORS))
    meta = {"format": FORMAT, "suites": sorted(measured.fwd), "ids": ids,
            "text": dict(measured.text), "first_ids": dict(measured.first_ids),
            "labels": dict(measured.labels)}
    (folder / META).write_text(json.dumps(meta))


def _read(folder: Path) -> tuple[Measured, list[int]] | None:
    from safetensors.torch import load_file

    if (folder / META).stat().st_size > MAX_META_BYTES:
        return None
    meta = json.loads((folder / META).read_text())
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None
    tensors = load_file(str(folder / TENSORS))
    suites = meta["suites"]
    fwd = {s: sg.ForwardOut(logprobs=tensors[f"{s}/logprobs"], hidden=tensors[f"{s}/hidden"])
           for s in suites}
    text, first_ids, labels = meta["text"], meta["first_ids"], meta["labels"]
    for s in suites:
        n = int(fwd[s].logprobs.shape[0])
        if fwd[s].hidden.shape[0] != n or fwd[s].logprobs.ndim != 2:
            return None
        # Generation may be off (first-token mode): then the lists are empty.
        if any(len(seq.get(s, [])) not in (0, n) for seq in (text, first_ids, labels)):
            return None
        if not set(labels.get(s, [])) <= _LABELS:
            return None
    ids = [int(i) for i in meta["ids"]]
    return Measured(fwd=fwd, text=text, first_ids=first_ids, labels=labels), ids
