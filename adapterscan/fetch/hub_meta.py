"""Evidence from the Hub beyond the bytes: the Hub's own scan status, and the base model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapterscan.emit import Emitter
from adapterscan.fetch.checks import BASE_MODEL_MISMATCH, SCAN_CLEAN, SCAN_FLAGGED, SCAN_PENDING
from adapterscan.findings import JSONValue

MAX_CARD_BYTES = 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_FLAGGED = 50


def _json_safe(value: Any, depth: int = 0) -> JSONValue:
    """Bounded copy of Hub-provided JSON for evidence."""
    if depth > 6:
        return "…"
    if isinstance(value, Mapping):
        return {str(k)[:200]: _json_safe(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value[:50]]
    if isinstance(value, str):
        return value[:1000]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:1000]


def ingest_security_status(status: Any, emit: Emitter, *, offline: bool = False) -> None:
    """Record `securityRepoStatus`; anything short of "scans done, no issues" is not clean."""
    if offline:
        emit.emit(SCAN_PENDING, "offline scan: the Hub's own security scan status was not "
                  "consulted", evidence={"offline": True})
        return
    if not isinstance(status, Mapping):
        emit.emit(SCAN_PENDING, "the Hub returned no security scan status for this revision",
                  evidence={"securityRepoStatus": _json_safe(status)})
        return
    flagged = status.get("filesWithIssues") or []
    if not isinstance(flagged, list):
        flagged = [flagged]
    for item in flagged[:MAX_FLAGGED]:
        path = item.get("path") if isinstance(item, Mapping) else None
        level = item.get("level") if isinstance(item, Mapping) else None
        emit.emit(SCAN_FLAGGED,
                  f"the Hub's security scan flagged {path or 'a file'} ({level or 'no level'})",
                  file=path if isinstance(path, str) else None,
                  evidence={"hub_report": _json_safe(item)})
    if status.get("scansDone") is not True:
        emit.emit(SCAN_PENDING, "the Hub has not finished scanning this revision "
                  "(not scanned yet is not clean)",
                  evidence={"scansDone": _json_safe(status.get("scansDone"))})
    elif not flagged:
        emit.emit(SCAN_CLEAN, "the Hub scanned this revision and listed no files with issues",
                  evidence={"scansDone": True, "filesWithIssues": []})


def _config_base(root: Path) -> str | None:
    path = root / "adapter_config.json"
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None  # the adapter_config analyzer reports malformed configs
    value = doc.get("base_model_name_or_path") if isinstance(doc, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _card_bases(root: Path) -> list[str]:
    path = root / "README.md"
    try:
        if not path.is_file() or path.stat().st_size > MAX_CARD_BYTES:
            return []
        from huggingface_hub import metadata_load

        meta = metadata_load(path)
    except Exception:  # a malformed card is not our finding to make; yaml raises many types
        return []
    value = meta.get("base_model") if isinstance(meta, dict) else None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [v.strip() for v in value[:20] if isinstance(v, str) and v.strip()]


def base_model_hint(root: Path, emit: Emitter) -> str | None:
    """The base model PEFT would load, cross-checked against the card's `base_model`."""
    config = _config_base(root)
    card = _card_bases(root)
    if config and card and config.lower() not in {c.lower() for c in card}:
        emit.emit(BASE_MODEL_MISMATCH,
                  f"adapter_config.json names base {config!r}, the model card names "
                  f"{', '.join(repr(c) for c in card)}",
                  file="adapter_config.json", key="base_model_name_or_path",
                  evidence={"adapter_config": config, "model_card": list(card)})
    return config or (card[0] if card else None)
