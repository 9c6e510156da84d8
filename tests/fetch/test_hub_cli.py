"""`adapterscan scan hf://...` end to end: exit codes and the pinned subject in the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app
from tests import factories
from tests.fetch.conftest import adapter_files
from tests.hubserver import HubServer

REPO = "acme/lora"


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["scan", *args])
    return result.exit_code, result.output


def test_hostile_repo_exits_1_with_pinned_subject(hub: HubServer, tmp_path: Path) -> None:
    files = adapter_files()
    files["adapter_model.safetensors"] = factories.raw_safetensors(
        b"{}", b"\0" * 100_000, header_len=2**40)
    sha = hub.add_repo(REPO, files)
    out = tmp_path / "r.json"
    code, _ = cli(f"hf://{REPO}@main", "--endpoint", hub.url, "--format", "json", "-o", str(out))
    assert code == 1
    doc = json.loads(out.read_text())
    assert doc["subject"]["revision"] == sha
    assert "AS102" in {f["rule_id"] for f in doc["findings"]}


def test_hf_endpoint_and_token_from_the_environment(hub: HubServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    hub.add_repo(REPO, adapter_files(), gated=True)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    code, output = cli(REPO)
    assert code == 3 and "gated" in output
    monkeypatch.setenv("HF_TOKEN", "hf_user")
    code, output = cli(REPO)
    assert code != 2 and "gated" not in output


def test_fetch_failures_exit_3_and_bad_ids_exit_2(hub: HubServer) -> None:
    hub.add_repo(REPO, adapter_files())
    code, output = cli(f"hf://{REPO}@nope", "--endpoint", hub.url)
    assert code == 3 and "revision 'nope' not found" in output
    code, output = cli("hf://not/a/repo", "--endpoint", hub.url)
    assert code == 2


def test_an_unreachable_endpoint_exits_3_with_a_reason() -> None:
    """huggingface_hub 2.x raises its HTTP client's transport errors, not OSErrors: they must
    still become a fetch failure (exit 3), never a traceback."""
    code, output = cli(f"hf://{REPO}", "--endpoint", "http://127.0.0.1:9")
    assert code == 3, output
    assert "cannot reach http://127.0.0.1:9" in output and "Traceback" not in output
