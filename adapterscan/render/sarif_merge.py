"""Several `adapterscan scan --format sarif` files as one SARIF log for GitHub code scanning.

Each run keeps its results and gets its own `automationDetails.id` (`adapterscan/<source>/`):
GitHub refuses one upload holding several runs of one tool in the same category. A run whose
source is a folder inside the repository (`root`) has its file locations made relative to the
repository root, so alerts point at the committed files; Hub sources keep theirs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from adapterscan.errors import UsageError
from adapterscan.render.sarif import SARIF_SCHEMA

MAX_INPUT_BYTES = 256 * 1024 * 1024


def merge_sarif(paths: list[Path], root: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for path in paths:
        try:
            if path.stat().st_size > MAX_INPUT_BYTES:
                raise UsageError(f"{path}: over {MAX_INPUT_BYTES} bytes")
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: not a readable SARIF file: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("version") != "2.1.0" or not isinstance(
                doc.get("runs"), list):
            raise UsageError(f"{path}: not a SARIF 2.1.0 log")
        for run in doc["runs"]:
            if isinstance(run, dict):
                runs.append(_placed(run, root))
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": runs}


def _placed(run: dict[str, Any], root: Path) -> dict[str, Any]:
    source = str(run.get("originalUriBaseIds", {}).get("SRCROOT", {}).get("description", {})
                 .get("text", ""))
    run = dict(run)
    run["automationDetails"] = {"id": f"adapterscan/{source}/"}
    prefix = _repo_relative(source, root)
    if prefix:
        for result in run.get("results", []):
            for loc in result.get("locations", []):
                artifact = loc.get("physicalLocation", {}).get("artifactLocation", {})
                if isinstance(artifact.get("uri"), str):
                    uri = artifact["uri"]
                    artifact["uri"] = prefix if uri == "." else f"{prefix}/{uri}"
    return run


def _repo_relative(source: str, root: Path) -> str | None:
    """The percent-encoded repository-relative path of a scanned folder, or None."""
    if not source or source.startswith("hf://"):
        return None
    folder = (root / source).resolve()
    if not folder.is_dir():
        return None
    try:
        rel = folder.relative_to(root.resolve())
    except ValueError:
        return None
    text = rel.as_posix()
    return None if text == "." else quote(text.encode("utf-8", "surrogateescape"), safe="/")
