"""Hub options and Hub references (owner/repo[@rev]), shared by fetchers and the base resolver."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_REPO = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96})(?:@(?P<rev>[^\s@]{1,255}))?$")


@dataclass(frozen=True)
class HubOptions:
    endpoint: str | None = None
    token: str | None = None
    revision: str | None = None
    cache_dir: Path | None = None
    max_repo_bytes: int = 20 * 1024**3
    timeout_s: float = 30.0
    retries: int = 3  # HTTP retries with exponential backoff (429, 5xx, network errors)
    # Files that are neither safetensors nor pickles are downloaded for analysis up to this size;
    # larger ones stay on the Hub and make the scan incomplete.
    max_small_file_bytes: int = 16 * 1024**2


@dataclass(frozen=True)
class HubRef:
    repo: str
    revision: str | None


def parse_hub_ref(text: str) -> HubRef | None:
    body = text[len("hf://"):] if text.startswith("hf://") else text
    m = _REPO.match(body)
    if not m:
        return None
    return HubRef(repo=m.group("repo"), revision=m.group("rev"))
