from __future__ import annotations

import json
from typing import Any

import pytest

from adapterscan.integrations.server.webhook import (
    Delivery,
    PayloadError,
    Revision,
    parse_body,
    revisions_to_scan,
)

A, B = "a" * 40, "b" * 40


def _payload(**kw: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"event": {"action": "update", "scope": "repo.content"},
                         "repo": {"type": "model", "name": "org/adapter", "headSha": A}}
    p.update(kw)
    return p


def test_every_updated_ref_is_scanned_pr_refs_included() -> None:
    refs = [{"ref": "refs/heads/main", "oldSha": A, "newSha": B},
            {"ref": "refs/pr/3", "oldSha": None, "newSha": A},
            {"ref": "refs/heads/gone", "oldSha": A, "newSha": "0" * 40}]
    assert revisions_to_scan(_payload(updatedRefs=refs)) == [
        Revision("org/adapter", B, "refs/heads/main"), Revision("org/adapter", A, "refs/pr/3")]


def test_head_sha_when_no_refs_and_non_models_ignored() -> None:
    assert revisions_to_scan(_payload()) == [Revision("org/adapter", A, None)]
    p = _payload()
    p["repo"]["type"] = "dataset"
    assert revisions_to_scan(p) == []


@pytest.mark.parametrize("payload", [
    [], {"event": {}}, _payload(repo={"type": "model", "name": "no-slash"}),
    _payload(updatedRefs="x"), _payload(updatedRefs=[{"ref": "r", "newSha": "zz"}]),
])
def test_malformed_payloads(payload: Any) -> None:
    with pytest.raises(PayloadError):
        revisions_to_scan(payload)


def test_privacy_is_read_from_the_delivery() -> None:
    from adapterscan.integrations.server.webhook import parse_delivery

    p = _payload()
    p["repo"]["private"] = True
    d = parse_delivery(p)
    assert d.private is True and d.revisions == (Revision("org/adapter", A, None, True),)
    assert parse_delivery(_payload()).private is None  # not stated: unknown
    p["repo"]["type"] = "dataset"
    assert parse_delivery(p).private is True and parse_delivery(p).revisions == ()
    p["repo"]["private"] = "yes"
    with pytest.raises(PayloadError, match="private"):
        parse_delivery(p)


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"[" * 100_000, b"{}"])
def test_malformed_bodies_are_payload_errors(body: bytes) -> None:
    # Found by the fuzzer (issue 25): nesting deeper than the JSON decoder's recursion limit
    # raised RecursionError, which is no ValueError, and the route answered 500 instead of 422.
    with pytest.raises(PayloadError):
        parse_body(body)


def test_a_body_is_parsed_as_a_delivery_or_by_the_given_parser() -> None:
    body = json.dumps(_payload()).encode()
    assert parse_body(body).revisions == (Revision("org/adapter", A, None),)
    assert parse_body(b"[1]", lambda p: Delivery("o/n", None, ())).repo == "o/n"
