"""Who may sign, and checking a bundle's signature against that: the ground both the attestation
check (verify.py) and the OpenSSF model-signing check (model_signing.py) stand on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.errors import SigningError, UsageError
from adapterscan.extras import require_extra
from adapterscan.provenance.bundle import ParsedBundle, parse_bundle
from adapterscan.provenance.dsse import INTOTO_PAYLOAD_TYPE, verify_envelope
from adapterscan.provenance.keys import key_hint


@dataclass(frozen=True)
class TrustConfig:
    """Who may sign: PEM keys for key bundles, an identity + issuer for keyless bundles."""

    keys: tuple[ec.EllipticCurvePublicKey, ...] = ()
    identity: str | None = None
    issuer: str | None = None
    trusted_root: Path | None = None  # a pinned Sigstore trusted_root.json; else production TUF
    offline: bool = False


@dataclass(frozen=True)
class Tree:
    """The source as it is now: regular files with their sha256, and every other entry."""

    root: Path
    files: Mapping[str, str]
    others: tuple[str, ...] = ()


def verify_signature(data: bytes, trust: TrustConfig) -> tuple[bytes, str]:
    """Return (statement bytes, who signed). SigningError when the signature does not hold;
    UsageError when no trust material fits the bundle's mode."""
    bundle = parse_bundle(data)
    if bundle.mode == "key":
        return verify_key(bundle, trust)
    return verify_keyless(bundle, trust)


def verify_key(bundle: ParsedBundle, trust: TrustConfig) -> tuple[bytes, str]:
    """(payload, signer) of a key-signed bundle that one of `trust.keys` verifies."""
    if not trust.keys:
        raise UsageError("the attestation is signed with a key; pass the public key",
                         hint="--key PUB.pem (or trusted_keys=... for load_adapter)")
    if bundle.envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        raise SigningError(f"DSSE payloadType {bundle.envelope.payload_type!r} is not in-toto")
    # The hint only orders the tries; the signature decides.
    keys = sorted(trust.keys, key=lambda k: key_hint(k) != bundle.hint)
    for key in keys:
        if verify_envelope(bundle.envelope, key):
            return bundle.envelope.payload, f"key sha256:{key_hint(key)}"
    raise SigningError("DSSE signature does not verify with any trusted key"
                       + (f" (bundle names key {bundle.hint})" if bundle.hint else ""))


def verify_keyless(bundle: ParsedBundle, trust: TrustConfig) -> tuple[bytes, str]:
    """(payload, signer) of a Sigstore keyless bundle issued to `trust.identity`."""
    if not (trust.identity and trust.issuer):
        raise UsageError("the attestation is signed keyless; say whom you trust",
                         hint="--identity SAN --issuer URL (e.g. a CI workflow and its issuer)")
    require_extra("sign", "verifying a keyless (Sigstore) attestation")
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    try:
        sig_bundle = Bundle.from_json(bundle.raw)
        verifier = (Verifier(trusted_root=TrustedRoot.from_file(str(trust.trusted_root)))
                    if trust.trusted_root else Verifier.production(offline=trust.offline))
        ptype, payload = verifier.verify_dsse(
            sig_bundle, Identity(identity=trust.identity, issuer=trust.issuer))
    except SigstoreError as exc:
        raise SigningError(f"keyless verification failed: {exc}") from exc
    except Exception as exc:  # a third-party parser on hostile input: a finding, not a crash
        raise SigningError(f"keyless bundle rejected: {type(exc).__name__}: {exc}") from exc
    if ptype != INTOTO_PAYLOAD_TYPE:
        raise SigningError(f"DSSE payloadType {ptype!r} is not in-toto")
    return payload, f"{trust.identity} via {trust.issuer}"
