from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.provenance.bundle import key_bundle
from adapterscan.provenance.dsse import sign_envelope
from adapterscan.provenance.model_signing import PREDICATE_TYPE, root_digest
from adapterscan.provenance.trust import TrustConfig
from adapterscan.provenance.verify import verify_source
from tests.provenance.helpers import make_adapter, report_for, rules, signed


def write_model_sig(folder: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """A model.sig in the OpenSSF model-signing v1.0 layout (key method)."""
    import hashlib

    resources = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "model.sig"}
    stmt = {"_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": folder.name, "digest": {"sha256": root_digest(resources)}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {"resources": [{"name": n, "digest": d, "algorithm": "sha256"}
                                        for n, d in sorted(resources.items())],
                          "serialization": {"method": "files", "hash_type": "sha256",
                                            "allow_symlinks": False,
                                            "ignore_paths": [".git", ".gitattributes"]}}}
    env = sign_envelope(json.dumps(stmt).encode(), key)
    (folder / "model.sig").write_text(json.dumps(key_bundle(env, key.public_key())))


@pytest.fixture
def signed_adapter(tmp_path: Path) -> tuple[Path, ec.EllipticCurvePrivateKey,
                                            ec.EllipticCurvePrivateKey]:
    adapter = make_adapter(tmp_path / "adapter")
    publisher = ec.generate_private_key(ec.SECP256R1())
    write_model_sig(adapter, publisher)
    return adapter, publisher, ec.generate_private_key(ec.SECP256R1())


def _ids(adapter: Path, scanner: ec.EllipticCurvePrivateKey,
         *trusted: ec.EllipticCurvePrivateKey) -> set[str]:
    bundle = signed(report_for(adapter), scanner)
    res = verify_source(adapter, bundle,
                        TrustConfig(keys=tuple(k.public_key() for k in (scanner, *trusted))),
                        ruleset=rules())
    return {f.rule_id for f in res.findings}


def test_verified_with_publisher_key(signed_adapter: tuple[Path, ec.EllipticCurvePrivateKey,
                                                           ec.EllipticCurvePrivateKey]) -> None:
    adapter, publisher, scanner = signed_adapter
    assert _ids(adapter, scanner, publisher) == {"AS712"}


def test_present_unverified(signed_adapter: tuple[Path, ec.EllipticCurvePrivateKey,
                                                  ec.EllipticCurvePrivateKey]) -> None:
    adapter, _, scanner = signed_adapter
    assert _ids(adapter, scanner) == {"AS711"}


def test_invalid_when_files_changed(signed_adapter: tuple[Path, ec.EllipticCurvePrivateKey,
                                                          ec.EllipticCurvePrivateKey]) -> None:
    adapter, publisher, scanner = signed_adapter
    (adapter / "adapter_config.json").write_text("{}")  # changed before our scan and attest
    assert _ids(adapter, scanner, publisher) == {"AS710"}


def test_malformed_model_sig(tmp_path: Path) -> None:
    adapter = make_adapter(tmp_path / "adapter")
    (adapter / "model.sig").write_text("{not json")
    scanner = ec.generate_private_key(ec.SECP256R1())
    assert _ids(adapter, scanner) == {"AS710"}


def test_we_can_emit_a_model_sig_that_verifies(tmp_path: Path) -> None:
    from adapterscan.provenance.model_signing import model_sig_bundle
    from adapterscan.provenance.verify import snapshot

    adapter = make_adapter(tmp_path / "adapter")
    publisher = ec.generate_private_key(ec.SECP256R1())
    bundle = model_sig_bundle(snapshot(adapter).files, adapter.name, publisher)
    (adapter / "model.sig").write_text(json.dumps(bundle))
    assert _ids(adapter, ec.generate_private_key(ec.SECP256R1()), publisher) == {"AS712"}
