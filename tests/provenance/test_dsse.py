from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope as SslEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

from adapterscan.provenance.bundle import MEDIA_TYPE, parse_bundle
from adapterscan.provenance.dsse import (
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    pae,
    sign_envelope,
    verify_envelope,
)
from adapterscan.provenance.keys import key_hint
from adapterscan.provenance.sign import sign_with_key


def test_pae_matches_the_spec_example() -> None:
    # https://github.com/secure-systems-lab/dsse/blob/v1.0.0/protocol.md#signature-definition
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_our_envelope_verifies_with_securesystemslib() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bundle = sign_with_key(b'{"_type":"x"}', key)
    assert bundle["mediaType"] == MEDIA_TYPE
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == key_hint(key.public_key())
    ssl_key = SSlibKey.from_crypto(key.public_key(), keyid=key_hint(key.public_key()))
    env = SslEnvelope.from_dict(bundle["dsseEnvelope"])
    assert env.payload_type == INTOTO_PAYLOAD_TYPE
    assert set(env.verify([ssl_key], 1)) == {ssl_key.keyid}


def test_securesystemslib_envelope_verifies_with_ours() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = CryptoSigner(key)
    env = SslEnvelope(payload=b"payload bytes", payload_type=INTOTO_PAYLOAD_TYPE, signatures={})
    env.sign(signer)
    ours = Envelope.from_dict(env.to_dict())
    assert verify_envelope(ours, key.public_key())
    assert not verify_envelope(ours, ec.generate_private_key(ec.SECP256R1()).public_key())


def test_changed_payload_or_type_breaks_the_signature() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    env = sign_envelope(b"abc", key)
    assert verify_envelope(env, key.public_key())
    assert not verify_envelope(Envelope(b"abd", env.payload_type, env.signatures),
                               key.public_key())
    assert not verify_envelope(Envelope(b"abc", "text/plain", env.signatures), key.public_key())


def test_bundle_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    parsed = parse_bundle(json.dumps(sign_with_key(b"{}", key)).encode())
    assert parsed.mode == "key" and parsed.hint == key_hint(key.public_key())
    assert parsed.envelope.payload == b"{}"
