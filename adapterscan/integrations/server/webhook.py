"""Hugging Face webhook payloads: validated by hand (huggingface_hub's model misses headSha)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
_ZERO = "0" * 40


class PayloadError(ValueError):
    """The payload is not a webhook we can act on (422)."""


@dataclass(frozen=True)
class Revision:
    repo: str
    sha: str
    ref: str | None
    private: bool | None = None  # repo.private of the delivery; None when it did not say


@dataclass(frozen=True)
class Delivery:
    repo: str
    private: bool | None  # None: the payload did not say (treated as private)
    revisions: tuple[Revision, ...]


def parse_body(raw: bytes, parse: Callable[[Any], Delivery] | None = None) -> Delivery:
    """A request body as the routes read it: JSON, then `parse` (a webhook delivery by default).
    Anything malformed is a PayloadError, nesting too deep for the JSON decoder included (a
    RecursionError is no ValueError: it would escape as a 500)."""
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise PayloadError(str(exc)) from exc
    except RecursionError as exc:
        raise PayloadError("JSON nested too deeply") from exc
    return (parse or parse_delivery)(payload)


def parse_delivery(payload: Any) -> Delivery:
    """The repo, its privacy and every new commit a delivery announces: each
    updatedRefs[].newSha (PR refs included), else repo.headSha. Deleted refs (newSha null or all
    zeros) need no scan; neither do datasets and spaces."""
    if not isinstance(payload, dict):
        raise PayloadError("payload must be a JSON object")
    event, repo = payload.get("event"), payload.get("repo")
    if not isinstance(event, dict) or not isinstance(repo, dict):
        raise PayloadError("payload needs 'event' and 'repo' objects")
    if not isinstance(event.get("action"), str) or not isinstance(event.get("scope"), str):
        raise PayloadError("event.action and event.scope must be strings")
    name, rtype, private = repo.get("name"), repo.get("type"), repo.get("private")
    if not isinstance(name, str) or not REPO_RE.match(name):
        raise PayloadError("repo.name must be 'owner/name'")
    if rtype not in ("model", "dataset", "space"):
        raise PayloadError("repo.type must be model, dataset or space")
    if private is not None and not isinstance(private, bool):
        raise PayloadError("repo.private must be true or false")
    revisions = _model_revisions(payload, repo, name, private) if rtype == "model" else []
    return Delivery(name, private, tuple(revisions))


def revisions_to_scan(payload: Any) -> list[Revision]:
    return list(parse_delivery(payload).revisions)


def _model_revisions(payload: dict[str, Any], repo: dict[str, Any], name: str,
                     private: bool | None) -> list[Revision]:
    refs = payload.get("updatedRefs")
    out: list[Revision] = []
    if refs is not None:
        if not isinstance(refs, list):
            raise PayloadError("updatedRefs must be a list")
        for i, r in enumerate(refs):
            if not isinstance(r, dict) or not isinstance(r.get("ref"), str):
                raise PayloadError(f"updatedRefs[{i}] needs a string 'ref'")
            new = r.get("newSha")
            if new is None or new == _ZERO:
                continue
            if not isinstance(new, str) or not SHA_RE.match(new):
                raise PayloadError(f"updatedRefs[{i}].newSha must be a 40-hex commit sha")
            out.append(Revision(name, new, r["ref"], private))
    if not out and refs is None:
        head = repo.get("headSha")
        if isinstance(head, str) and SHA_RE.match(head):
            out.append(Revision(name, head, None, private))
        elif head is not None:
            raise PayloadError("repo.headSha must be a 40-hex commit sha")
    return out
