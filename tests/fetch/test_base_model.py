"""--base resolution: the bundled reference, folders, and Hub bases pinned to a commit, from the
local cache or the (local, test) Hub, every file hashed and checked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from adapterscan.emit import Emitter
from adapterscan.errors import FetchError
from adapterscan.fetch.base_model import BaseNotFound, ResolvedBase, resolve_base
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.reference import reference_dir
from adapterscan.rules.loader import load_ruleset
from adapterscan.source import FetchedSource
from tests.hubserver import HubServer

BASE = "acme/tiny-base"


def base_repo_files() -> dict[str, bytes]:
    """The bundled reference's files: a real model folder, small enough to serve."""
    return {p.name: p.read_bytes() for p in sorted(reference_dir().iterdir()) if p.is_file()}


def adapter(tmp_path: Path, base: str | None, revision: str | None = None, *,
            kind: str = "local") -> FetchedSource:
    root = tmp_path / "adapter"
    root.mkdir(parents=True, exist_ok=True)
    cfg: dict[str, object] = {"peft_type": "LORA", "r": 4, "revision": revision}
    if base is not None:
        cfg["base_model_name_or_path"] = base
    (root / "adapter_config.json").write_text(json.dumps(cfg))
    return FetchedSource(source=str(root), kind=kind, root=root, entries=())


def resolve(spec: str, src: FetchedSource, opts: HubOptions) -> tuple[ResolvedBase, Emitter]:
    emit = Emitter(load_ruleset())
    return resolve_base(spec, src, opts, emit), emit


def unpinned(emit: Emitter) -> list[str]:
    return [f.message for f in emit.findings if f.rule_id == "AS109"]


def api_requests(hub: HubServer) -> int:
    return sum(1 for r in hub.requests)


# -- bundled and folders --------------------------------------------------------------------------

def test_bundled_name_maps_to_the_reference_checked_against_its_manifest(
        tmp_path: Path, opts: HubOptions) -> None:
    base, emit = resolve("auto", adapter(tmp_path, "adapterscan/reference-aligned"), opts)
    assert (base.source, base.name, base.label) == (
        "bundled", "adapterscan/reference-aligned", "reference")
    files = {f.path: f for f in base.files}
    assert set(files) == set(base_repo_files())
    assert {f.checked_against for f in files.values()} == {"bundled-manifest"}
    weights = (reference_dir() / "model.safetensors").read_bytes()
    assert files["model.safetensors"].sha256 == hashlib.sha256(weights).hexdigest()
    assert len(unpinned(emit)) == 1  # the examples' configs carry no revision


def test_a_local_adapter_naming_a_folder_gets_that_folder(tmp_path: Path,
                                                           opts: HubOptions) -> None:
    folder = tmp_path / "my-base"
    folder.mkdir()
    for name, data in base_repo_files().items():
        (folder / name).write_bytes(data)
    base, emit = resolve("auto", adapter(tmp_path, str(folder)), opts)
    assert (base.source, base.folder, base.sha) == ("folder", folder.resolve(), None)
    assert {f.checked_against for f in base.files} == {"none"}
    assert "my-base" in unpinned(emit)[0]


def test_a_hub_adapter_never_chooses_a_local_folder(tmp_path: Path, opts: HubOptions) -> None:
    folder = tmp_path / "local-base"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    with pytest.raises(BaseNotFound, match="local folders"):
        resolve("auto", adapter(tmp_path, str(folder), kind="hub"), opts)


@pytest.mark.parametrize(("config", "message"), [
    ({"peft_type": "LORA"}, "names no base model"),
    ({"base_model_name_or_path": "acme/x", "revision": 7}, "not a revision name"),
    ({"base_model_name_or_path": "acme/x", "revision": "../../../etc"}, "not a revision name"),
    ({"base_model_name_or_path": "a" * 5000}, "over 1000 characters"),
    ({"base_model_name_or_path": "./no-such-base-folder"}, "not a folder on this machine"),
    ({"base_model_name_or_path": "/etc"}, "not a model folder"),
])
def test_configs_that_name_no_usable_base_are_clear_errors(
        tmp_path: Path, opts: HubOptions, config: dict[str, object], message: str) -> None:
    src = adapter(tmp_path, None)
    (src.root / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(BaseNotFound, match=message):
        resolve("auto", src, opts)


def test_no_config_at_all(tmp_path: Path, opts: HubOptions) -> None:
    src = adapter(tmp_path, None)
    (src.root / "adapter_config.json").unlink()
    with pytest.raises(BaseNotFound, match=r"no adapter_config\.json"):
        resolve("auto", src, opts)


# -- the Hub: pinned, cached, checked -------------------------------------------------------------

def test_hub_base_is_pinned_downloaded_then_served_from_the_cache(
        tmp_path: Path, hub: HubServer, opts: HubOptions) -> None:
    files = base_repo_files()
    sha = hub.add_repo(BASE, files)
    src = adapter(tmp_path, BASE)
    first, emit = resolve("auto", src, opts)
    assert (first.source, first.repo, first.sha, first.endpoint) == ("hub", BASE, sha, hub.url)
    assert first.folder.name == sha and first.folder.is_relative_to(tmp_path / "cache")
    got = {f.path: f for f in first.files}
    assert set(got) == set(files)
    for name, data in files.items():
        assert got[name].sha256 == hashlib.sha256(data).hexdigest()
        assert got[name].checked_against == "hub-listing"
    assert sha in unpinned(emit)[0]
    sent = hub.sent(BASE, "model.safetensors")
    assert sent == len(files["model.safetensors"])
    second, _ = resolve("auto", src, opts)
    assert (second.source, second.sha, second.folder) == ("cache", sha, first.folder)
    assert hub.sent(BASE, "model.safetensors") == sent  # nothing downloaded again


def test_an_unpinned_name_follows_the_branch_a_pinned_one_does_not(
        tmp_path: Path, hub: HubServer, opts: HubOptions) -> None:
    files = base_repo_files()
    old = hub.add_repo(BASE, files)
    resolve("auto", adapter(tmp_path, BASE), opts)
    new = hub.add_commit(BASE, {**files, "generation_config.json": b"{}"})
    moved, emit = resolve("auto", adapter(tmp_path, BASE), opts)
    assert moved.sha == new and unpinned(emit)
    pinned, emit = resolve("auto", adapter(tmp_path, BASE, old), opts)
    assert (pinned.sha, pinned.source) == (old, "cache")
    assert {f.checked_against for f in pinned.files} == {"cache-blob-name"}
    assert unpinned(emit) == []


def test_a_pinned_sha_in_the_cache_needs_no_network(tmp_path: Path, hub: HubServer,
                                                    opts: HubOptions) -> None:
    sha = hub.add_repo(BASE, base_repo_files())
    resolve(f"{BASE}@{sha}", adapter(tmp_path, None), opts)
    before = api_requests(hub)
    base, _ = resolve(f"{BASE}@{sha}", adapter(tmp_path, None), opts)
    assert (base.source, base.sha) == ("cache", sha)
    assert api_requests(hub) == before


def test_offline_uses_the_ref_the_cache_recorded(tmp_path: Path, hub: HubServer,
                                                 opts: HubOptions,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sha = hub.add_repo(BASE, base_repo_files())
    opts_dl = HubOptions(endpoint=opts.endpoint, cache_dir=opts.cache_dir, retries=0)
    # A snapshot_download records refs/main, as a user's earlier `from_pretrained` would.
    from huggingface_hub import snapshot_download

    snapshot_download(BASE, endpoint=hub.url, cache_dir=tmp_path / "cache" / "hub", token=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base, emit = resolve("auto", adapter(tmp_path, BASE), opts_dl)
    assert (base.source, base.sha) == ("cache", sha)
    assert unpinned(emit)


def test_an_unreachable_hub_falls_back_to_the_cached_ref(tmp_path: Path, hub: HubServer,
                                                         opts: HubOptions) -> None:
    sha = hub.add_repo(BASE, base_repo_files())
    resolve("auto", adapter(tmp_path, BASE), opts)
    from huggingface_hub import snapshot_download

    snapshot_download(BASE, endpoint=hub.url, cache_dir=tmp_path / "cache" / "hub", token=False)
    down = HubOptions(endpoint="http://127.0.0.1:9", cache_dir=opts.cache_dir, retries=0,
                      timeout_s=5)
    base, _ = resolve("auto", adapter(tmp_path, BASE), down)
    assert (base.source, base.sha) == ("cache", sha)


def test_a_missing_base_names_what_was_wanted(tmp_path: Path, hub: HubServer,
                                              opts: HubOptions) -> None:
    with pytest.raises(BaseNotFound, match="acme/missing") as err:
        resolve("auto", adapter(tmp_path, "acme/missing", "v2"), opts)
    assert "acme/missing@v2" in err.value.message


def test_a_tampered_cache_blob_is_refused(tmp_path: Path, hub: HubServer,
                                          opts: HubOptions) -> None:
    sha = hub.add_repo(BASE, base_repo_files())
    first, _ = resolve(f"{BASE}@{sha}", adapter(tmp_path, None), opts)
    blob = (first.folder / "config.json").resolve()
    blob.chmod(0o644)
    blob.write_bytes(b'{"model_type": "llama", "evil": true}')
    with pytest.raises(FetchError, match=r"config\.json does not match its cache blob name"):
        resolve(f"{BASE}@{sha}", adapter(tmp_path, None), opts)


def test_a_snapshot_file_that_is_not_a_blob_link_is_refused(tmp_path: Path, hub: HubServer,
                                                             opts: HubOptions) -> None:
    """A plain file put in place of the snapshot's link to a digest-named blob: nothing vouches
    for its bytes, so the pinned (cache-only) path refuses it."""
    sha = hub.add_repo(BASE, base_repo_files())
    first, _ = resolve(f"{BASE}@{sha}", adapter(tmp_path, None), opts)
    link = first.folder / "config.json"
    link.unlink()
    link.write_bytes(b'{"model_type": "llama", "evil": true}')
    with pytest.raises(FetchError, match=r"config\.json does not match a cache blob"):
        resolve(f"{BASE}@{sha}", adapter(tmp_path, None), opts)


def test_a_file_the_hub_did_not_list_is_refused(tmp_path: Path, hub: HubServer,
                                                opts: HubOptions) -> None:
    """A loader-visible file dropped into the snapshot that the commit's listing lacks (a
    tokenizer.json beside the listed files) fails the online check."""
    hub.add_repo(BASE, base_repo_files())
    first, _ = resolve(BASE, adapter(tmp_path, None), opts)
    (first.folder / "tokenizer.json").write_text('{"added_tokens": []}')
    with pytest.raises(FetchError, match=r"tokenizer\.json does not match the Hub's listing"):
        resolve(BASE, adapter(tmp_path, None), opts)


def test_a_base_without_safetensors_is_refused(tmp_path: Path, hub: HubServer,
                                               opts: HubOptions) -> None:
    hub.add_repo(BASE, {"config.json": b"{}", "pytorch_model.bin": b"\x80\x02."})
    with pytest.raises(BaseNotFound, match=r"no \.safetensors"):
        resolve(BASE, adapter(tmp_path, None), opts)


def test_a_hub_adapters_hub_id_is_never_a_local_folder(tmp_path: Path, hub: HubServer,
                                                       opts: HubOptions,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder in the working directory spelled like the Hub id does not capture the name."""
    sha = hub.add_repo(BASE, base_repo_files())
    monkeypatch.chdir(tmp_path)
    decoy = tmp_path / BASE
    decoy.mkdir(parents=True)
    for name, data in base_repo_files().items():
        (decoy / name).write_bytes(data)
    base, _ = resolve("auto", adapter(tmp_path, BASE, kind="hub"), opts)
    assert (base.source, base.sha) == ("hub", sha)
    local, _ = resolve("auto", adapter(tmp_path / "l", BASE), opts)  # a local adapter: as PEFT
    assert local.source == "folder"


def test_a_download_draws_no_progress_bar(tmp_path: Path, hub: HubServer, opts: HubOptions,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    """Library use (no CLI, bars switched on): huggingface_hub's bars stay hidden."""
    import sys

    from huggingface_hub import utils as hub_utils

    monkeypatch.delenv("ADAPTERSCAN_VERBOSE", raising=False)
    monkeypatch.setattr(sys.modules[hub_utils.are_progress_bars_disabled.__module__],
                        "HF_HUB_DISABLE_PROGRESS_BARS", None)
    hub_utils.enable_progress_bars()
    try:
        hub.add_repo(BASE, base_repo_files())
        base, _ = resolve("auto", adapter(tmp_path, BASE), opts)
        assert base.source == "hub" and not hub_utils.are_progress_bars_disabled()
    finally:
        hub_utils.disable_progress_bars()
    assert "Fetching" not in capfd.readouterr().err
