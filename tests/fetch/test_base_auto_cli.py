"""`adapterscan scan ADAPTER --base auto` end to end: the base the adapter's config names is
found (a folder, a repo on the test Hub), probed, and recorded in the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app
from adapterscan.reference import export_reference
from tests.cli_runner import schema_validator
from tests.fetch.test_base_model import BASE, base_repo_files
from tests.hubserver import HubServer
from tests.static.factories_trained import near_noop_lora

PROBE = ["--max-prompts", "8", "--no-trigger-search", "--device", "cpu"]


@pytest.fixture(scope="module")
def lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small PEFT LoRA on the bundled reference (random B, near no-op), saved by peft."""
    return near_noop_lora(tmp_path_factory.mktemp("lora"))


def naming(lora: Path, tmp_path: Path, base: str, revision: str | None = None) -> Path:
    """A copy of `lora` whose adapter_config.json names `base` at `revision`."""
    out = tmp_path / "adapter"
    out.mkdir(parents=True)
    for f in lora.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg.update(base_model_name_or_path=base, revision=revision)
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


def scan(*args: str) -> tuple[int, dict[str, Any], str]:
    res = CliRunner().invoke(app, ["scan", *args, "--format", "json"])
    assert "Traceback" not in res.output
    doc: dict[str, Any] = json.loads(res.stdout)
    schema_validator().validate(doc)
    return res.exit_code, doc, res.output


def rules(doc: dict[str, Any]) -> set[str]:
    return {f["rule_id"] for f in doc["findings"]}


@pytest.mark.slow
def test_auto_loads_the_folder_the_config_names(lora: Path, tmp_path: Path) -> None:
    folder = export_reference(tmp_path / "exported-base")
    code, doc, out = scan(str(naming(lora, tmp_path, str(folder))), "--base", "auto", *PROBE)
    assert code in (0, 1), out
    base = doc["base"]
    assert (base["requested"], base["source"], base["folder"]) == ("auto", "folder",
                                                                   str(folder.resolve()))
    assert doc["base_model"] == "auto"
    assert {f["path"] for f in base["files"]} >= {"config.json", "model.safetensors"}
    assert doc["results"]["probe"]["n"]["harmful"] == 8  # the probe ran on it
    assert doc["results"]["weights"]["base"]["base_dir"] == str(folder.resolve())
    assert "AS109" in rules(doc)  # no revision in the config


@pytest.mark.slow
def test_auto_pins_a_hub_base_and_records_the_commit(lora: Path, tmp_path: Path,
                                                     hub: HubServer) -> None:
    sha = hub.add_repo(BASE, base_repo_files())
    adapter = naming(lora, tmp_path, BASE, "main")
    code, doc, out = scan(str(adapter), "--base", "auto", "--endpoint", hub.url, *PROBE)
    assert code in (0, 1), out
    base = doc["base"]
    assert (base["source"], base["repo"], base["revision"], base["sha"], base["endpoint"]) == (
        "hub", BASE, "main", sha, hub.url)
    assert {f["checked_against"] for f in base["files"]} == {"hub-listing"}
    assert doc["results"]["probe"]["n"]["harmful"] == 8
    unpinned = [f for f in doc["findings"] if f["rule_id"] == "AS109"]
    assert unpinned and unpinned[0]["evidence"]["loaded_sha"] == sha
    # Pinned to the commit, the second scan reads the cache only and reports no AS109.
    pinned = naming(lora, tmp_path / "again", BASE, sha)
    code, doc, out = scan(str(pinned), "--base", "auto", "--endpoint", hub.url, *PROBE)
    assert code in (0, 1), out
    assert (doc["base"]["source"], doc["base"]["sha"]) == ("cache", sha)
    assert "AS109" not in rules(doc)


def test_a_base_that_cannot_be_found_exits_3_naming_it(lora: Path, tmp_path: Path,
                                                       hub: HubServer) -> None:
    adapter = naming(lora, tmp_path, "acme/no-such-base", "v1")
    code, doc, out = scan(str(adapter), "--base", "auto", "--endpoint", hub.url)
    assert code == 3, out
    assert doc["base"] is None and doc["results"]["probe"] is None
    errors = [e["message"] for e in doc["errors"] if e["stage"] == "base"]
    assert errors and "acme/no-such-base@v1" in errors[0]
    res = CliRunner().invoke(app, ["scan", str(adapter), "--base", "auto", "--endpoint",
                                   hub.url])  # the text report says it too
    assert res.exit_code == 3 and "acme/no-such-base@v1" in res.output
