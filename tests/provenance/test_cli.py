from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan._version import __version__
from adapterscan.cli.app import app
from tests.provenance.helpers import make_adapter

runner = CliRunner()


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    res = runner.invoke(app, ["keygen", "--out-private", str(priv), "--out-public", str(pub)])
    assert res.exit_code == 0, res.output
    return priv, pub


def test_keygen_private_key_is_0600_and_refuses_overwrite(keys: tuple[Path, Path]) -> None:
    priv, pub = keys
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    res = runner.invoke(app, ["keygen", "--out-private", str(priv), "--out-public", str(pub)])
    assert res.exit_code == 2


def test_keygen_with_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapterscan.errors import SigningError
    from adapterscan.provenance.keys import load_private_key

    monkeypatch.setenv("ADAPTERSCAN_KEY_PASSPHRASE", "s3cret")
    priv = tmp_path / "enc.pem"
    assert runner.invoke(app, ["keygen", "--out-private", str(priv), "--out-public",
                               str(tmp_path / "enc.pub")]).exit_code == 0
    assert b"ENCRYPTED" in priv.read_bytes()
    load_private_key(priv)
    monkeypatch.delenv("ADAPTERSCAN_KEY_PASSPHRASE")
    with pytest.raises(SigningError):
        load_private_key(priv)


def test_scan_sign_verify_tamper(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    priv, pub = keys
    adapter = make_adapter(tmp_path / "adapter")
    att = tmp_path / "a.sigstore.json"
    rep = tmp_path / "report.json"
    res = runner.invoke(app, ["scan", str(adapter), "-f", "json", "-o", str(rep),
                              "--sign-key", str(priv), "--attestation-out", str(att)])
    assert res.exit_code in (0, 1, 3), res.output
    report = json.loads(rep.read_text())
    bundle = json.loads(att.read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    acceptable = report["complete"] and report["verdict"]["decision"] != "fail"
    res = runner.invoke(app, ["verify", str(adapter), "--attestation", str(att), "--key", str(pub),
                              "-f", "json"])
    assert res.exit_code == (0 if acceptable else 1), res.output
    out = json.loads(res.output)
    assert out["ok"] is acceptable
    assert out["tool"] == {"name": "adapterscan", "version": __version__}
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    res = runner.invoke(app, ["verify", str(adapter), "--attestation", str(att), "--key", str(pub)])
    assert res.exit_code == 1 and "REJECTED" in res.output
    assert "AS702 attested-digest-mismatch [critical]" in res.output


def test_usage_errors(tmp_path: Path, keys: tuple[Path, Path],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, pub = keys
    adapter = make_adapter(tmp_path / "adapter")
    res = runner.invoke(app, ["verify", str(adapter), "--attestation", str(tmp_path / "none"),
                              "--key", str(pub)])
    assert res.exit_code == 2
    res = runner.invoke(app, ["verify", str(adapter), "--attestation", str(pub),
                              "--identity", "x@y"])
    assert res.exit_code == 2


def test_attest_without_key_or_oidc_exits_2(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from adapterscan.cli.attest import attest_report
    from tests.provenance.helpers import report_for

    monkeypatch.setattr("adapterscan.provenance.sign.ambient_identity_token", lambda: None)
    adapter = make_adapter(tmp_path / "adapter")
    with pytest.raises(typer.Exit) as exc:
        attest_report(report_for(adapter), None, tmp_path / "x.sigstore.json")
    assert exc.value.exit_code == 2
    assert not (tmp_path / "x.sigstore.json").exists()
