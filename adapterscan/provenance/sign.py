"""Signing: ECDSA P-256 keys offline, or keyless through Sigstore (Fulcio + Rekor) in CI."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.errors import SigningError
from adapterscan.extras import require_extra
from adapterscan.provenance.bundle import key_bundle
from adapterscan.provenance.dsse import sign_envelope
from adapterscan.provenance.keys import key_hint


def sign_with_key(statement: bytes, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """A key-mode bundle for the statement bytes."""
    env = sign_envelope(statement, key, keyid=key_hint(key.public_key()))
    return key_bundle(env, key.public_key())


def ambient_identity_token() -> str | None:
    """An OIDC token from the environment (GitHub Actions, GitLab, GCP...), or None."""
    require_extra("sign", "keyless signing")
    from sigstore.oidc import IdentityError, detect_credential

    try:
        return detect_credential()
    except IdentityError as exc:
        raise SigningError(f"ambient OIDC credential detection failed: {exc}") from exc


def sign_keyless(statement: bytes, token: str, *, staging: bool = False) -> dict[str, Any]:
    """Sign through Sigstore's public good instance (network: Fulcio, Rekor)."""
    require_extra("sign", "keyless signing")
    from sigstore.dsse import Statement
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    try:
        config = ClientTrustConfig.staging() if staging else ClientTrustConfig.production()
        ctx = SigningContext.from_trust_config(config)
        with ctx.signer(IdentityToken(token), cache=False) as signer:
            bundle = signer.sign_dsse(Statement(statement))
    except SigstoreError as exc:
        raise SigningError(f"keyless signing failed: {exc}") from exc
    result: dict[str, Any] = json.loads(bundle.to_json())
    return result
