"""Sigstore bundle v0.3 JSON (`*.sigstore.json`): the one container for key and keyless modes.

Key mode: `verificationMaterial.publicKey.hint` names the key (sha256 of its SPKI PEM, as OpenSSF
model-signing does) and there are no transparency-log entries. Keyless mode: sigstore-python
writes the bundle (certificate + Rekor entry) and verifies it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.errors import SigningError
from adapterscan.provenance.dsse import Envelope
from adapterscan.provenance.keys import key_hint, read_bounded

MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
MAX_BUNDLE_BYTES = 32 * 1024 * 1024


def key_bundle(envelope: Envelope, key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    return {
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(key)}, "tlogEntries": []},
        "dsseEnvelope": envelope.to_dict(),
    }


@dataclass(frozen=True)
class ParsedBundle:
    mode: str  # "key" | "keyless"
    envelope: Envelope
    hint: str | None
    raw: bytes


def read_bundle(path: Path) -> bytes:
    return read_bounded(path, MAX_BUNDLE_BYTES, "an attestation")


def parse_bundle(data: bytes) -> ParsedBundle:
    """Parse the container without trusting it; signatures are checked in verify.py."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SigningError(f"attestation is not JSON: {type(exc).__name__}") from exc
    if not isinstance(raw, dict):
        raise SigningError("attestation is not a JSON object")
    media = raw.get("mediaType")
    if not isinstance(media, str) or not media.startswith("application/vnd.dev.sigstore.bundle"):
        raise SigningError(f"not a Sigstore bundle (mediaType {media!r})")
    material = raw.get("verificationMaterial")
    if not isinstance(material, dict):
        raise SigningError("bundle has no verificationMaterial")
    envelope = Envelope.from_dict(raw.get("dsseEnvelope"))
    if "publicKey" in material:
        pk = material["publicKey"]
        hint = pk.get("hint") if isinstance(pk, dict) else None
        return ParsedBundle("key", envelope, hint if isinstance(hint, str) else None, data)
    if "certificate" in material or "x509CertificateChain" in material:
        return ParsedBundle("keyless", envelope, None, data)
    raise SigningError("bundle's verificationMaterial has neither a public key nor a certificate")
