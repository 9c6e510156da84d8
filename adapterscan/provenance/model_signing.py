"""Interop with OpenSSF model-signing (https://github.com/ossf/model-signing-spec, v1.0).

A `model.sig` in a repo is a Sigstore bundle whose DSSE payload is an in-toto statement with
predicate `https://model_signing/signature/v1.0`: `predicate.resources` lists every file with its
sha256, and the subject digest is sha256 over the concatenated raw resource digests in name order.
We verify it with our own DSSE code (the `model-signing` package imports pyOpenSSL without
declaring it, so it is not a dependency) and report the outcome as provenance evidence.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.emit import Emitter
from adapterscan.errors import SigningError, UsageError
from adapterscan.findings import JSONValue
from adapterscan.provenance.bundle import MAX_BUNDLE_BYTES, ParsedBundle, parse_bundle
from adapterscan.provenance.checks import (
    MODEL_SIG_INVALID,
    MODEL_SIG_UNVERIFIED,
    MODEL_SIG_VERIFIED,
)
from adapterscan.provenance.trust import Tree, TrustConfig, verify_key, verify_keyless

PREDICATE_TYPE = "https://model_signing/signature/v1.0"
SIG_NAME = "model.sig"
DEFAULT_IGNORED = (".git", ".gitignore", ".gitattributes", ".github")


def manifest(statement: Mapping[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
    """(resources name -> sha256, ignore_paths) of a model-signing statement."""
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise SigningError(f"predicateType {statement.get('predicateType')!r} is not "
                           f"{PREDICATE_TYPE}")
    pred = statement.get("predicate")
    resources = pred.get("resources") if isinstance(pred, dict) else None
    if not isinstance(resources, list):
        raise SigningError("model.sig statement has no predicate.resources")
    out: dict[str, str] = {}
    for r in resources:
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) \
                or not isinstance(r.get("digest"), str):
            raise SigningError("model.sig resource without a name and a digest")
        if r.get("algorithm", "sha256") != "sha256":
            raise SigningError(f"model.sig resource {r['name']}: only sha256 is supported")
        out[r["name"]] = r["digest"].lower()
    ser = pred.get("serialization") if isinstance(pred, dict) else None
    ignore = ser.get("ignore_paths", []) if isinstance(ser, dict) else []
    if isinstance(ser, dict) and ser.get("method", "files") != "files":
        raise SigningError(f"model.sig serialization {ser.get('method')!r} is not supported")
    return out, tuple(str(p) for p in ignore if isinstance(p, str))


def root_digest(resources: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(resources):
        h.update(bytes.fromhex(resources[name]))
    return h.hexdigest()


def compare(statement: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    """Every difference between a model-signing statement and the files (model.sig excluded)."""
    resources, ignore = manifest(statement)
    problems: list[str] = []
    try:
        root = root_digest(resources)
    except ValueError:
        return ["a resource digest is not hex"]
    subjects = statement.get("subject")
    sdig = [s.get("digest", {}).get("sha256") for s in subjects or [] if isinstance(s, dict)]
    if root not in sdig:
        problems.append("subject digest is not the digest of the listed resources")

    def ignored(path: str) -> bool:
        top = path.split("/", 1)[0]
        return top in DEFAULT_IGNORED or any(path == p or path.startswith(p.rstrip("/") + "/")
                                             for p in ignore)

    for name, want in sorted(resources.items()):
        got = files.get(name)
        if got is None:
            problems.append(f"{name}: signed but missing")
        elif got != want:
            problems.append(f"{name}: sha256 differs from the signed one")
    for name in sorted(files):
        if name != SIG_NAME and name not in resources and not ignored(name):
            problems.append(f"{name}: not covered by the signature")
    return problems


def check_model_sig(tree: Tree, emit: Emitter, trust: TrustConfig) -> None:
    """Emit model_sig_verified / _unverified / _invalid for `model.sig` in `tree`."""
    path = tree.root / SIG_NAME
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # never follow a link
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)
        if len(data) > MAX_BUNDLE_BYTES:
            raise SigningError("larger than a bundle can be")
        bundle = parse_bundle(data)
        statement = json.loads(bundle.envelope.payload.decode("utf-8"))
        if not isinstance(statement, dict):
            raise SigningError("payload is not a JSON object")
        problems = compare(statement, tree.files)
    except OSError as exc:
        emit.skip(SIG_NAME, f"cannot read: {exc.strerror}")
        return
    except (SigningError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        msg = exc.message if isinstance(exc, SigningError) else str(exc)
        emit.emit(MODEL_SIG_INVALID, f"model.sig is malformed: {msg}",
                  file=SIG_NAME)
        return
    evidence: dict[str, JSONValue] = {"mode": bundle.mode, "key_hint": bundle.hint,
                                      "manifest_problems": list(problems[:20])}
    signer = _signer(bundle, trust)
    if signer is None:
        emit.emit(MODEL_SIG_UNVERIFIED,
                  "an OpenSSF model-signing signature is present but was not verified against "
                  "a trusted key or identity" + ("" if not problems else
                                                 f"; its manifest disagrees: {problems[0]}"),
                  file=SIG_NAME, evidence=evidence)
    elif problems:
        emit.emit(MODEL_SIG_INVALID,
                  f"model.sig signed by {signer} does not match the files: "
                  + "; ".join(problems[:5]), file=SIG_NAME, evidence=evidence)
    else:
        emit.emit(MODEL_SIG_VERIFIED,
                  f"model.sig is signed by {signer} and matches every file", file=SIG_NAME,
                  evidence={**evidence, "signer": signer})


def _signer(bundle: ParsedBundle, trust: TrustConfig) -> str | None:
    """Who signed, by the same checks as an attestation's signature; None when no trusted key
    or identity verifies it (or none is given for its mode)."""
    verify = verify_key if bundle.mode == "key" else verify_keyless
    try:
        return verify(bundle, trust)[1]
    except (SigningError, UsageError):
        return None


def model_sig_bundle(files: Mapping[str, str], name: str,
                     key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """A key-method `model.sig` bundle for `files` (path -> sha256), in the model-signing v1.0
    layout, so that `model_signing verify key` users can check an adapter we publish."""
    from adapterscan.provenance.bundle import key_bundle
    from adapterscan.provenance.dsse import sign_envelope

    resources = {p: d for p, d in files.items()
                 if p != SIG_NAME and p.split("/", 1)[0] not in DEFAULT_IGNORED}
    if not resources:
        raise SigningError("nothing to sign")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": root_digest(resources)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "resources": [{"name": p, "digest": d, "algorithm": "sha256"}
                          for p, d in sorted(resources.items())],
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                              "ignore_paths": list(DEFAULT_IGNORED)},
        },
    }
    payload = json.dumps(statement, separators=(",", ":")).encode()
    return key_bundle(sign_envelope(payload, key, keyid=""), key.public_key())
