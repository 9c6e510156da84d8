from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapterscan.errors import UsageError
from adapterscan.policy.policy import Policy
from adapterscan.provenance.dsse import sign_envelope
from adapterscan.provenance.statement import parse_statement
from adapterscan.provenance.trust import TrustConfig
from adapterscan.provenance.verify import snapshot, verify_source
from adapterscan.report import Decision
from tests.provenance.helpers import make_adapter, report_for, rules, signed


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    return make_adapter(tmp_path / "adapter")


def _verify(folder: Path, bundle: bytes, key: ec.EllipticCurvePrivateKey,
            **kw: object) -> tuple[bool, set[str], list[str]]:
    res = verify_source(folder, bundle, TrustConfig(keys=(key.public_key(),)), ruleset=rules(),
                        **kw)  # type: ignore[arg-type]
    return res.ok, {f.rule_id for f in res.findings}, [f.message for f in res.findings]


def test_good_attestation_verifies(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    ok, ids, _ = _verify(adapter, signed(report_for(adapter), key), key)
    assert ok and ids == set()


def test_statement_content(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    bundle = json.loads(signed(report_for(adapter), key))
    import base64

    att = parse_statement(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert att.subjects == snapshot(adapter).files
    assert att.decision == "pass" and att.complete
    pred = att.raw["predicate"]
    assert pred["scanner"]["name"] == "adapterscan" and "digest" in pred["ruleset"]


def test_one_byte_changed(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    bundle = signed(report_for(adapter), key)
    f = adapter / "adapter_model.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    ok, ids, msgs = _verify(adapter, bundle, key)
    assert not ok and ids == {"AS702"} and "adapter_model.safetensors" in msgs[0]


def test_extra_and_missing_files(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    bundle = signed(report_for(adapter), key)
    (adapter / "training_args.bin").write_bytes(b"\x80\x04N.")
    (adapter / "adapter_config.json").unlink()
    ok, ids, _ = _verify(adapter, bundle, key)
    assert not ok and ids == {"AS703", "AS704"}


def test_another_adapters_attestation(tmp_path: Path, adapter: Path,
                                      key: ec.EllipticCurvePrivateKey) -> None:
    other = make_adapter(tmp_path / "other", seed=7)
    ok, ids, _ = _verify(adapter, signed(report_for(other), key), key)
    assert not ok and "AS702" in ids


def test_wrong_key(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    bundle = signed(report_for(adapter), ec.generate_private_key(ec.SECP256R1()))
    ok, ids, _ = _verify(adapter, bundle, key)
    assert not ok and ids == {"AS701"}


def test_tampered_statement_breaks_signature(adapter: Path,
                                             key: ec.EllipticCurvePrivateKey) -> None:
    raw = json.loads(signed(report_for(adapter, Decision.FAIL), key))
    import base64

    payload = base64.b64decode(raw["dsseEnvelope"]["payload"]).replace(b'"fail"', b'"pass"')
    raw["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    ok, ids, _ = _verify(adapter, json.dumps(raw).encode(), key)
    assert not ok and ids == {"AS701"}


@pytest.mark.parametrize("bundle", [b"not json", b"[]", b'{"mediaType": "x"}',
                                    b'{"mediaType":'
                                    b' "application/vnd.dev.sigstore.bundle.v0.3+json",'
                                    b' "verificationMaterial": {"publicKey": {}},'
                                    b' "dsseEnvelope": {"payload": "!!", "payloadType": "x",'
                                    b' "signatures": [{"sig": "AA=="}]}}'])
def test_malformed_bundles(adapter: Path, key: ec.EllipticCurvePrivateKey, bundle: bytes) -> None:
    ok, ids, _ = _verify(adapter, bundle, key)
    assert not ok and ids == {"AS701"}


def test_expired_and_future(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=100)
    bundle = signed(report_for(adapter), key, now=old)
    assert _verify(adapter, bundle, key)[0]  # no limit set: age alone does not reject
    ok, ids, msgs = _verify(adapter, bundle, key, max_age_days=90)
    assert not ok and ids == {"AS709"} and "limit is 90" in msgs[0]
    ok, ids, _ = _verify(adapter, bundle, key, policy=Policy(max_attestation_age_days=30))
    assert not ok and ids == {"AS709"}
    future = signed(report_for(adapter), key, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    ok, ids, _ = _verify(adapter, future, key)
    assert not ok and ids == {"AS709"}


def test_verdicts(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    ok, ids, _ = _verify(adapter, signed(report_for(adapter, Decision.FAIL), key), key)
    assert not ok and ids == {"AS705"}
    ok, ids, _ = _verify(adapter, signed(report_for(adapter, Decision.WARN), key), key)
    assert ok and ids == {"AS706"}  # warn passes under the default policy...
    ok, _, _ = _verify(adapter, signed(report_for(adapter, Decision.WARN), key), key,
                       policy=Policy(fail_on=Policy().warn_on))
    assert not ok  # ...and fails under a policy that fails on medium
    ok, ids, _ = _verify(adapter, signed(report_for(adapter, Decision.WARN, complete=False), key),
                         key)
    assert not ok and ids == {"AS706", "AS707"}


def test_stale_ruleset(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    old = "ab" * 32
    bundle = signed(report_for(adapter, ruleset_digest=old), key)
    ok, ids, _ = _verify(adapter, bundle, key)
    assert not ok and ids == {"AS708"}
    ok, ids, _ = _verify(adapter, bundle, key, policy=Policy(min_ruleset_digests=frozenset({old})))
    assert ok and not ids


def test_foreign_statement_signed_by_trusted_key(adapter: Path,
                                                 key: ec.EllipticCurvePrivateKey) -> None:
    from adapterscan.provenance.bundle import key_bundle

    stmt = {"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/v1",
            "subject": [{"name": "x", "digest": {"sha256": "0" * 64}}], "predicate": {}}
    env = sign_envelope(json.dumps(stmt).encode(), key)
    ok, ids, _ = _verify(adapter, json.dumps(key_bundle(env, key.public_key())).encode(), key)
    assert not ok and ids == {"AS713"}


def test_duplicate_json_keys_rejected(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    from adapterscan.provenance.bundle import key_bundle

    good = json.loads(signed(report_for(adapter), key))
    import base64

    payload = base64.b64decode(good["dsseEnvelope"]["payload"])
    dup = payload[:-1] + b',"predicateType":"https://adapterscan.dev/attestation/scan/v1"}'
    env = sign_envelope(dup, key)
    ok, ids, _ = _verify(adapter, json.dumps(key_bundle(env, key.public_key())).encode(), key)
    assert not ok and ids == {"AS713"}


def test_key_bundle_without_keys_is_a_usage_error(adapter: Path,
                                                  key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(UsageError):
        verify_source(adapter, signed(report_for(adapter), key), TrustConfig())


def test_symlink_added_is_reported(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    bundle = signed(report_for(adapter), key)
    (adapter / "link").symlink_to("/etc/passwd")
    ok, ids, _ = _verify(adapter, bundle, key)
    assert not ok and ids == {"AS703"}


def test_copy_elsewhere_still_verifies(tmp_path: Path, adapter: Path,
                                       key: ec.EllipticCurvePrivateKey) -> None:
    bundle = signed(report_for(adapter), key)
    moved = shutil.copytree(adapter, tmp_path / "moved")
    assert _verify(moved, bundle, key)[0]  # subjects are relative names and digests


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["mediaType", "verificationMaterial", "dsseEnvelope", "publicKey",
                         "certificate", "payload", "payloadType", "signatures", "sig"]),
        kids, max_size=4), max_leaves=20).map(lambda v: json.dumps(v).encode())))
def test_hostile_bundles_are_findings_never_crashes(adapter: Path,
                                                    key: ec.EllipticCurvePrivateKey,
                                                    data: bytes) -> None:
    try:
        ok, ids, _ = _verify(adapter, data, key)
    except UsageError:
        return  # a keyless-looking bundle with no identity given: exit 2, by design
    assert not ok and ids == {"AS701"}


def test_deeply_nested_json(adapter: Path, key: ec.EllipticCurvePrivateKey) -> None:
    ok, ids, _ = _verify(adapter, b"[" * 200_000 + b"]" * 200_000, key)
    assert not ok and ids == {"AS701"}


def test_public_api_attestation_json_for(tmp_path: Path, adapter: Path,
                                         key: ec.EllipticCurvePrivateKey) -> None:
    from adapterscan.provenance.api import attestation_json_for
    from adapterscan.provenance.keys import write_private_key

    path = tmp_path / "k.pem"
    write_private_key(path, key)
    text = attestation_json_for(report_for(adapter), path)
    ok, ids, _ = _verify(adapter, text.encode(), key)
    assert ok and not ids


def test_the_statement_names_the_base_commit_and_files_the_scan_loaded(tmp_path: Path) -> None:
    import dataclasses

    from adapterscan.provenance.statement import build_statement

    report = dataclasses.replace(
        report_for(make_adapter(tmp_path / "a")), base_model="auto",
        base={"requested": "auto", "name": "acme/base", "source": "hub", "repo": "acme/base",
              "revision": "main", "sha": "a" * 40, "endpoint": "http://127.0.0.1:1/",
              "folder": "/cache/x", "files": [{"path": "model.safetensors", "size": 3,
                                               "sha256": "b" * 64, "checked_against": "hub"}]})
    desc = build_statement(report)["predicate"]["baseModel"]
    assert desc["name"] == "acme/base" and desc["digest"] == {"gitCommit": "a" * 40}
    assert desc["uri"] == "http://127.0.0.1:1/acme/base"
    assert desc["annotations"]["files"] == {"model.safetensors": "b" * 64}
    assert desc["annotations"]["source"] == "hub"
    plain = dataclasses.replace(report, base=None, base_model="reference")
    assert build_statement(plain)["predicate"]["baseModel"] == {"name": "reference"}
