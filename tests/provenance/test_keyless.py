"""Keyless verification offline: sigstore-python's Verifier against a pinned test trusted root."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapterscan.errors import UsageError
from adapterscan.provenance.statement import build_statement, statement_bytes
from adapterscan.provenance.trust import TrustConfig
from adapterscan.provenance.verify import verify_source
from tests.provenance.fake_sigstore import IDENTITY, ISSUER, FakeSigstore
from tests.provenance.helpers import make_adapter, report_for, rules


@pytest.fixture(scope="module")
def pki() -> FakeSigstore:
    return FakeSigstore.create()


@pytest.fixture
def setup(tmp_path: Path, pki: FakeSigstore) -> tuple[Path, bytes, Path]:
    adapter = make_adapter(tmp_path / "adapter")
    bundle = pki.sign_dsse(statement_bytes(build_statement(report_for(adapter))))
    root = tmp_path / "trusted_root.json"
    root.write_text(json.dumps(pki.trusted_root()))
    return adapter, bundle, root


def _ids(adapter: Path, bundle: bytes, root: Path, identity: str = IDENTITY,
         issuer: str = ISSUER) -> tuple[bool, set[str], str]:
    res = verify_source(adapter, bundle, TrustConfig(identity=identity, issuer=issuer,
                                                     trusted_root=root), ruleset=rules())
    return res.ok, {f.rule_id for f in res.findings}, " ".join(f.message for f in res.findings)


def test_keyless_bundle_verifies(setup: tuple[Path, bytes, Path]) -> None:
    ok, ids, _ = _ids(*setup)
    assert ok and not ids


def test_wrong_identity(setup: tuple[Path, bytes, Path]) -> None:
    ok, ids, msg = _ids(*setup, identity="attacker@example.com")
    assert not ok and ids == {"AS701"} and "SAN" in msg


def test_wrong_issuer(setup: tuple[Path, bytes, Path]) -> None:
    ok, ids, _ = _ids(*setup, issuer="https://other.issuer.test")
    assert not ok and ids == {"AS701"}


def test_other_trusted_root(tmp_path: Path, setup: tuple[Path, bytes, Path]) -> None:
    adapter, bundle, _ = setup
    other = tmp_path / "other_root.json"
    other.write_text(json.dumps(FakeSigstore.create().trusted_root()))
    ok, ids, _ = _ids(adapter, bundle, other)
    assert not ok and ids == {"AS701"}


def test_tampered_keyless_payload(setup: tuple[Path, bytes, Path]) -> None:
    adapter, bundle, root = setup
    raw = json.loads(bundle)
    import base64

    payload = base64.b64decode(raw["dsseEnvelope"]["payload"]).replace(b'"pass"', b'"fail"')
    raw["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    ok, ids, _ = _ids(adapter, json.dumps(raw).encode(), root)
    assert not ok and ids == {"AS701"}


def test_keyless_tamper_of_files_detected(setup: tuple[Path, bytes, Path]) -> None:
    adapter, bundle, root = setup
    (adapter / "extra.py").write_text("import os\n")
    ok, ids, _ = _ids(adapter, bundle, root)
    assert not ok and ids == {"AS703"}


def test_keyless_without_identity_is_a_usage_error(setup: tuple[Path, bytes, Path]) -> None:
    adapter, bundle, root = setup
    with pytest.raises(UsageError):
        verify_source(adapter, bundle, TrustConfig(trusted_root=root))


@pytest.mark.parametrize("mutate", ["no_tlog", "cert_garbage", "cert_not_b64", "entry_kind",
                                    "empty_sig"])
def test_broken_keyless_bundles(setup: tuple[Path, bytes, Path], mutate: str) -> None:
    adapter, bundle, root = setup
    raw = json.loads(bundle)
    vm = raw["verificationMaterial"]
    if mutate == "no_tlog":
        vm["tlogEntries"] = []
    elif mutate == "cert_garbage":
        vm["certificate"]["rawBytes"] = "AAAA"
    elif mutate == "cert_not_b64":
        vm["certificate"]["rawBytes"] = "%%%"
    elif mutate == "entry_kind":
        vm["tlogEntries"][0]["kindVersion"] = {"kind": "intoto", "version": "9"}
    else:
        raw["dsseEnvelope"]["signatures"] = [{"sig": ""}]
    ok, ids, _ = _ids(adapter, json.dumps(raw).encode(), root)
    assert not ok and ids == {"AS701"}


def test_keyless_signing_glue_offline(tmp_path: Path, pki: FakeSigstore,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`scan --attestation-out` without a key, with an ambient OIDC token: Fulcio/Rekor are
    replaced by the test PKI (the real services need the network); our glue, the bundle we
    write and its verification are real."""
    import contextlib

    import sigstore.models
    import sigstore.oidc
    import sigstore.sign
    from sigstore.models import Bundle

    from adapterscan.cli.attest import attest_report

    class FakeSigner:
        def sign_dsse(self, stmt: object) -> Bundle:
            return Bundle.from_json(pki.sign_dsse(stmt._contents))  # type: ignore[attr-defined]

    class FakeContext:
        @contextlib.contextmanager
        def signer(self, token: object, *, cache: bool = True) -> Iterator[FakeSigner]:
            assert token == "id-token"
            yield FakeSigner()

    monkeypatch.setattr("adapterscan.provenance.sign.ambient_identity_token", lambda: "jwt")
    monkeypatch.setattr(sigstore.oidc, "IdentityToken", lambda raw: "id-token")
    monkeypatch.setattr(sigstore.models.ClientTrustConfig, "production",
                        classmethod(lambda cls, offline=False: None))
    monkeypatch.setattr(sigstore.sign.SigningContext, "from_trust_config",
                        classmethod(lambda cls, config: FakeContext()))
    adapter = make_adapter(tmp_path / "adapter")
    out = tmp_path / "keyless.sigstore.json"
    attest_report(report_for(adapter), None, out)
    root = tmp_path / "root.json"
    root.write_text(json.dumps(pki.trusted_root()))
    ok, ids, _ = _ids(adapter, out.read_bytes(), root)
    assert ok and not ids


def test_keyless_verification_without_sigstore_names_the_sign_extra(
        setup: tuple[Path, bytes, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from adapterscan.cli.app import app
    from tests.hidden_modules import hide_here

    adapter, bundle, root = setup
    (tmp_path / "a.sigstore.json").write_bytes(bundle)
    hide_here(monkeypatch, ["sigstore"])
    res = CliRunner().invoke(app, ["verify", str(adapter), "-a", str(tmp_path / "a.sigstore.json"),
                                   "--identity", IDENTITY, "--issuer", ISSUER,
                                   "--trusted-root", str(root)])
    assert res.exit_code == 2, res.output
    assert [line for line in res.output.splitlines() if line.strip()] == [
        "error: verifying a keyless (Sigstore) attestation needs the sign extra: pip install "
        "'adapterscan[sign]' (not installed: sigstore)"]
