"""What the Hub fetcher takes from the Hub before any byte is scanned: the model info (file
metadata, security status) and the tree listing, built into huggingface_hub's own objects as
its client builds them; and the header triage of a remote safetensors file read by ranges.
Input: a mode byte, then the Hub's JSON `{"info": {...}, "tree": [...]}` or the remote file.
The fetcher's documented error is FetchError."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huggingface_hub.hf_api import ModelInfo, RepoFile, RepoFolder

from adapterscan.errors import FetchError
from adapterscan.fetch.hub_meta import ingest_security_status
from adapterscan.fetch.hub_plan import announced_from
from adapterscan.fetch.hub_triage import triage_header
from benchmarks.fuzz.common import LIMITS, check_report, emitter

ALLOWED: tuple[type[BaseException], ...] = (FetchError,)
MAX_LEN = 8192


def hub_objects(doc: Any) -> tuple[list[Any], ModelInfo] | None:
    """huggingface_hub's objects for the JSON, or None where its client would already fail."""
    try:
        tree = [RepoFile(**p) if p["type"] == "file"  # type: ignore[no-untyped-call]
                else RepoFolder(**p) for p in doc["tree"]]  # type: ignore[no-untyped-call]
        info = ModelInfo(**doc["info"])  # type: ignore[no-untyped-call]
    except Exception:  # the client library's own failure on a bad answer: not our parser
        return None
    return tree, info


def listing(raw: bytes) -> None:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return  # the client's JSON decoding: not our parser
    built = hub_objects(doc)
    if built is None:
        return
    tree, info = built
    emit = emitter()
    announced_from(tree, info.siblings, emit)
    ingest_security_status(info.security_repo_status, emit)
    check_report(emit)


def triage(raw: bytes) -> None:
    emit = emitter()
    triage_header(lambda start, n: raw[start:start + n], "adapter_model.safetensors", len(raw),
                  emit, LIMITS)
    check_report(emit)


def prepare(scratch: Path, assets: Path) -> Callable[[bytes], None]:
    def target(raw: bytes) -> None:
        if raw[:1] == b"{":
            listing(raw)
        elif raw:
            triage(raw[1:])
    return target
