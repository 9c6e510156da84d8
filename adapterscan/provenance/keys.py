"""PEM keys for key-mode signing: ECDSA P-256 only (what DSSE/Sigstore key bundles expect)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.errors import SigningError
from adapterscan.provenance.names import PASSPHRASE_ENV

MAX_PEM_BYTES = 64 * 1024

PublicKeyLike = Path | str | ec.EllipticCurvePublicKey


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def key_hint(key: ec.EllipticCurvePublicKey) -> str:
    """sha256 of the SPKI PEM: the `publicKey.hint` OpenSSF model-signing writes too."""
    return hashlib.sha256(public_pem(key)).hexdigest()


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """At most `limit` bytes of `path`; a larger file is refused, not truncated."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise SigningError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    if len(data) > limit:
        raise SigningError(f"{path}: larger than {limit} bytes; not {what}")
    return data


def _read_pem(path: Path) -> bytes:
    return read_bounded(path, MAX_PEM_BYTES, "a PEM key")


def _check_curve(key: object, path: Path | str) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) or not \
            isinstance(key.curve, ec.SECP256R1):
        raise SigningError(f"{path}: not an ECDSA P-256 key",
                           hint="create one with `adapterscan keygen`")


def load_private_key(path: Path, passphrase: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """Load a PEM private key; the passphrase defaults to $ADAPTERSCAN_KEY_PASSPHRASE."""
    if passphrase is None and os.environ.get(PASSPHRASE_ENV):
        passphrase = os.environ[PASSPHRASE_ENV].encode()
    data = _read_pem(path)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:  # encrypted without passphrase, or passphrase for a clear key
        raise SigningError(f"{path}: {exc}", hint=f"set {PASSPHRASE_ENV}") from exc
    except ValueError as exc:
        raise SigningError(f"{path}: not a readable PEM private key (or wrong passphrase)",
                           hint=f"set {PASSPHRASE_ENV} for an encrypted key") from exc
    _check_curve(key, path)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def load_public_key(path: Path | str) -> ec.EllipticCurvePublicKey:
    data = _read_pem(Path(path))
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise SigningError(f"{path}: not a readable PEM public key") from exc
    _check_curve(key, path)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def load_public_keys(keys: Iterable[PublicKeyLike]) -> tuple[ec.EllipticCurvePublicKey, ...]:
    """Accept PEM paths or key objects (as `load_adapter(trusted_keys=...)` does)."""
    out = []
    for k in keys:
        if isinstance(k, ec.EllipticCurvePublicKey):
            _check_curve(k, "<key object>")
            out.append(k)
        else:
            out.append(load_public_key(k))
    return tuple(out)


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey,
                      passphrase: bytes | None = None, *, overwrite: bool = False) -> None:
    """Write PKCS#8 PEM with mode 0600 from creation on (never world-readable, even briefly)."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise SigningError(f"{path}: already exists", hint="pass --force to overwrite") from exc
    except OSError as exc:
        raise SigningError(f"{path}: cannot create: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)  # an existing file keeps its mode on O_TRUNC
        fh.write(pem)


def write_public_key(path: Path, key: ec.EllipticCurvePublicKey, *,
                     overwrite: bool = False) -> None:
    if path.exists() and not overwrite:
        raise SigningError(f"{path}: already exists", hint="pass --force to overwrite")
    path.write_bytes(public_pem(key))
