"""Attest and verify a Hub repo served by the local Hub-compatible test server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.fetch.hub_options import HubOptions
from adapterscan.pipeline import ScanOptions, scan
from adapterscan.provenance.trust import TrustConfig
from adapterscan.provenance.verify import verify_source
from tests.fetch.conftest import adapter_files
from tests.hubserver import HubServer
from tests.provenance.helpers import rules, signed

REPO = "acme/lora"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    for var in ("HF_HUB_CACHE", "HF_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    with HubServer() as server:
        yield server


def test_hub_attestation_verifies_then_catches_a_new_commit(hub: HubServer,
                                                            tmp_path: Path) -> None:
    opts = HubOptions(endpoint=hub.url, cache_dir=tmp_path / "cache", timeout_s=10)
    files = adapter_files()
    hub.add_repo(REPO, files)
    key = ec.generate_private_key(ec.SECP256R1())
    report = scan(f"hf://{REPO}", options=ScanOptions(hub=opts), ruleset=rules())
    bundle = signed(report, key)
    trust = TrustConfig(keys=(key.public_key(),))
    pinned = f"hf://{REPO}@{report.subject.revision}"
    res = verify_source(pinned, bundle, trust, hub=opts, ruleset=rules())
    acceptable = report.complete and report.verdict.decision.value != "fail"
    assert res.ok is acceptable, [f.message for f in res.findings]
    assert not {"AS701", "AS702", "AS703", "AS704"} & {f.rule_id for f in res.findings}

    hub.add_commit(REPO, {**files, "adapter_config.json": b"{}"})
    res = verify_source(f"hf://{REPO}", bundle, trust, hub=opts, ruleset=rules())
    assert not res.ok and "AS702" in {f.rule_id for f in res.findings}
