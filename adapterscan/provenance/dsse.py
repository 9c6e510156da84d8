"""DSSE v1: pre-authentication encoding and the envelope (https://github.com/secure-systems-lab/dsse).

About 40 lines of our own: sigstore-python exposes no public key-based DSSE signer, and the format
is small enough that owning it is cheaper than a private-API dependency. The tests check our
envelopes with securesystemslib's independent implementation.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.errors import SigningError

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body (lengths in bytes)."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    sig: bytes
    keyid: str = ""


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": [{"sig": base64.b64encode(s.sig).decode(), "keyid": s.keyid}
                           for s in self.signatures],
        }

    @classmethod
    def from_dict(cls, raw: object) -> Envelope:
        if not isinstance(raw, Mapping):
            raise SigningError("dsseEnvelope is not an object")
        payload_type = raw.get("payloadType")
        sigs = raw.get("signatures")
        if not isinstance(payload_type, str) or not isinstance(sigs, list) or not sigs:
            raise SigningError("dsseEnvelope needs payloadType and at least one signature")
        out = []
        for s in sigs:
            if not isinstance(s, Mapping) or not isinstance(s.get("sig"), str):
                raise SigningError("dsseEnvelope signature without a `sig` string")
            keyid = s.get("keyid") or ""
            out.append(Signature(sig=_b64(s["sig"], "signature"),
                                 keyid=keyid if isinstance(keyid, str) else ""))
        return cls(payload=_b64(raw.get("payload"), "payload"), payload_type=payload_type,
                   signatures=tuple(out))


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise SigningError(f"dsseEnvelope {what} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningError(f"dsseEnvelope {what} is not valid base64") from exc


def sign_envelope(payload: bytes, key: ec.EllipticCurvePrivateKey, *, keyid: str = "",
                  payload_type: str = INTOTO_PAYLOAD_TYPE) -> Envelope:
    sig = key.sign(pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
    return Envelope(payload=payload, payload_type=payload_type,
                    signatures=(Signature(sig=sig, keyid=keyid),))


def verify_envelope(env: Envelope, key: ec.EllipticCurvePublicKey) -> bool:
    """True when any signature of the envelope verifies with `key` over PAE(type, payload)."""
    message = pae(env.payload_type, env.payload)
    for s in env.signatures:
        try:
            key.verify(s.sig, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return True
    return False
