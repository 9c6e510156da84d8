"""The attestation verifier: Sigstore-bundle and DSSE-envelope parsing, the signature check,
the in-toto statement and its claims, and the OpenSSF `model.sig` reader. The first byte picks
what the rest is: a bundle as given; a statement the harness signs with the trusted key (so
mutations reach the statement parser past the signature); or a `model.sig` beside the files.
Documented errors: UsageError (no trust material fits the bundle's mode)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from adapterscan.errors import UsageError
from adapterscan.hashing import sha256_file
from adapterscan.provenance.model_signing import SIG_NAME, check_model_sig
from adapterscan.provenance.sign import sign_with_key
from adapterscan.provenance.trust import Tree, TrustConfig
from adapterscan.provenance.verify import check_attestation
from benchmarks.fuzz.common import check_report, emitter, ruleset, write

ALLOWED: tuple[type[BaseException], ...] = (UsageError,)
MAX_LEN = 8192
KEY = "signing-key.pem"  # written by seeds.py: the key the seeds are signed with
ADAPTER = "adapter"  # the attested files, written by seeds.py


def prepare(scratch: Path, assets: Path) -> Callable[[bytes], None]:
    key = load_pem_private_key((assets / KEY).read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    trust = TrustConfig(keys=(key.public_key(),))
    files = {p.name: sha256_file(p) for p in sorted((assets / ADAPTER).iterdir())}
    tree = Tree(root=scratch, files=files)
    rules = ruleset()

    def target(raw: bytes) -> None:
        if not raw:
            return
        mode, body = raw[0] % 3, raw[1:]
        if mode == 0:
            check_attestation(body, tree, trust, ruleset=rules)
        elif mode == 1:
            bundle = json.dumps(sign_with_key(body, key)).encode()
            check_attestation(bundle, tree, trust, ruleset=rules)
        else:
            write(scratch, SIG_NAME, body)
            emit = emitter()
            check_model_sig(tree, emit, trust)
            check_report(emit)
    return target
