"""The Hub fetcher against a local Hub-compatible server, driven by the real huggingface_hub."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from adapterscan.emit import Emitter
from adapterscan.errors import FetchError, UsageError
from adapterscan.fetch.dispatch import make_fetcher
from adapterscan.fetch.hub import HubFetcher
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.pipeline import ScanOptions, scan
from adapterscan.report import Decision, ScanReport
from adapterscan.rules.loader import load_ruleset
from adapterscan.source import FetchLimits
from tests import factories
from tests.fetch.conftest import adapter_files
from tests.hubserver import HubServer, git_blob_id

REPO = "acme/lora"


def run(source: str, opts: HubOptions) -> ScanReport:
    return scan(source, options=ScanOptions(hub=opts))


def ids(report: ScanReport) -> list[str]:
    return sorted(f.rule_id for f in report.findings)


def fetch(opts: HubOptions, revision: str | None = None) -> tuple[Emitter, object]:
    emit = Emitter(load_ruleset())
    src = HubFetcher(REPO, revision, opts, FetchLimits()).fetch(emit)
    return emit, src


def hostile_repo(header: bytes, *, header_len: int | None = None,
                 body: int = 2 * 1024 * 1024) -> dict[str, bytes]:
    files = adapter_files()
    files["adapter_model.safetensors"] = factories.raw_safetensors(
        header, b"\0" * body, header_len=header_len)
    return files


# -- pinning and verification -------------------------------------------------------------------

def test_clean_repo_is_pinned_and_verified(hub: HubServer, opts: HubOptions) -> None:
    files = adapter_files()
    sha = hub.add_repo(REPO, files)
    report = run(f"hf://{REPO}@main", opts)
    s = report.subject
    assert (s.kind, s.repo, s.revision, s.endpoint) == ("hub", REPO, sha, hub.url)
    by_path = {f.path: f for f in s.files}
    assert set(by_path) == set(files)
    for path, data in files.items():
        assert by_path[path].size == len(data)
        assert by_path[path].sha256 == hashlib.sha256(data).hexdigest()
    assert not {"AS101", "AS102", "AS103", "AS107", "AS108"} & set(ids(report))
    assert "AS106" in ids(report)  # the Hub's scan status recorded as evidence
    assert report.complete and report.verdict.decision is not Decision.FAIL
    # Every download after the model info used the pinned sha, never the branch name.
    resolves = [r.path for r in hub.requests if "/resolve/" in r.path]
    assert resolves and all(f"/resolve/{sha}/" in p for p in resolves)


def test_fetched_source_records_digests_and_base(hub: HubServer, opts: HubOptions) -> None:
    files = adapter_files()
    hub.add_repo(REPO, files)
    _, src = fetch(opts)
    assert src.base_model_hint == "org/base"  # type: ignore[attr-defined]
    expected = src.expected_sha256  # type: ignore[attr-defined]
    assert expected["adapter_model.safetensors"] == hashlib.sha256(
        files["adapter_model.safetensors"]).hexdigest()
    assert expected["adapter_config.json"] == hashlib.sha256(
        files["adapter_config.json"]).hexdigest()
    root: Path = src.root  # type: ignore[attr-defined]
    assert (root / "adapter_config.json").read_bytes() == files["adapter_config.json"]
    assert opts.cache_dir is not None and opts.cache_dir in root.parents


def test_owner_repo_form_and_revision_option(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files())
    sha2 = hub.add_commit(REPO, adapter_files(r=8), ref="v2")
    report = run(REPO, HubOptions(**{**opts.__dict__, "revision": "v2"}))
    assert report.subject.revision == sha2
    with pytest.raises(UsageError):
        make_fetcher(f"{REPO}@main", hub=HubOptions(revision="v2"))


def test_tampered_git_file_is_critical(hub: HubServer, opts: HubOptions) -> None:
    files = adapter_files()
    hub.add_repo(REPO, files)
    evil = files["adapter_config.json"].replace(b"org/base", b"org/evil")
    hub.set_tamper(REPO, "adapter_config.json", evil)
    report = run(f"hf://{REPO}", opts)
    hits = [f for f in report.findings if f.rule_id == "AS101"]
    assert [f.location.file for f in hits] == ["adapter_config.json"]
    assert hits[0].evidence["expected"] == git_blob_id(files["adapter_config.json"])
    assert hits[0].evidence["actual"] == git_blob_id(evil)
    assert report.verdict.decision is Decision.FAIL


def test_tampered_lfs_file_is_critical(hub: HubServer, opts: HubOptions) -> None:
    files = adapter_files()
    hub.add_repo(REPO, files)
    body = bytearray(files["adapter_model.safetensors"])
    body[-1] ^= 0xFF
    hub.set_tamper(REPO, "adapter_model.safetensors", bytes(body))
    report = run(f"hf://{REPO}", opts)
    hits = [f for f in report.findings if f.rule_id == "AS101"]
    assert [f.location.file for f in hits] == ["adapter_model.safetensors"]
    assert hits[0].evidence["digest"] == "sha256"
    assert hits[0].evidence["actual"] == hashlib.sha256(body).hexdigest()
    assert report.verdict.decision is Decision.FAIL


def test_tampered_cache_blob_is_caught_on_the_next_scan(hub: HubServer,
                                                        opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files())
    assert "AS101" not in ids(run(f"hf://{REPO}", opts))
    assert opts.cache_dir is not None
    blobs = list((opts.cache_dir / "hub").glob("models--acme--lora/blobs/*"))
    target = next(b for b in blobs if b.stat().st_size > 1000)  # the safetensors blob
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    assert "AS101" in ids(run(f"hf://{REPO}", opts))


# -- header triage ------------------------------------------------------------------------------

@pytest.mark.parametrize("header,header_len,max_sent", [
    (b"{}", 2**40, 8),  # declared length far beyond the file: rejected on 8 bytes
    (b"{" + b"x" * 1000, None, 8 + 1001),  # not JSON: rejected on 8 + N bytes
    (json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 10**9]}}).encode(),
     None, 200),  # offsets outside the file
])
def test_hostile_header_rejects_without_downloading_body(
        hub: HubServer, opts: HubOptions, header: bytes, header_len: int | None,
        max_sent: int) -> None:
    files = hostile_repo(header, header_len=header_len)
    hub.add_repo(REPO, files)
    report = run(f"hf://{REPO}", opts)
    size = len(files["adapter_model.safetensors"])
    sent = hub.sent(REPO, "adapter_model.safetensors")
    assert 8 <= sent <= max_sent
    assert sent < size / 1000
    hits = [f for f in report.findings if f.rule_id == "AS102"]
    assert [f.location.file for f in hits] == ["adapter_model.safetensors"]
    assert hits[0].evidence["body_downloaded"] is False
    assert report.verdict.decision is Decision.FAIL
    assert all(r.range for r in hub.requests if "safetensors" in r.path and r.method == "GET")


def test_clean_header_is_read_with_ranges_then_downloaded(hub: HubServer,
                                                          opts: HubOptions) -> None:
    files = adapter_files()
    hub.add_repo(REPO, files)
    run(f"hf://{REPO}", opts)
    gets = [r for r in hub.requests if r.method == "GET" and r.path.endswith(".safetensors")
            and r.server == "cdn"]
    assert gets[0].range == "bytes=0-7"
    n = int.from_bytes(files["adapter_model.safetensors"][:8], "little")
    assert gets[1].range == f"bytes=8-{8 + n - 1}"
    assert gets[-1].range is None  # the full download after triage passed
    assert len(gets) == 3


# -- the Hub's errors ---------------------------------------------------------------------------

def test_missing_repo_and_revision(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files())
    with pytest.raises(FetchError, match="repository not found"):
        run("hf://acme/nope", opts)
    with pytest.raises(FetchError, match="revision 'nope' not found"):
        run(f"hf://{REPO}@nope", opts)
    with pytest.raises(UsageError):
        run("hf://not a repo", opts)


def test_gated_repo_needs_a_token(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files(), gated=True)
    with pytest.raises(FetchError, match="gated") as info:
        run(f"hf://{REPO}", opts)
    assert info.value.hint and "token" in info.value.hint
    report = run(f"hf://{REPO}", HubOptions(**{**opts.__dict__, "token": "hf_user"}))
    assert report.subject.revision is not None


def test_private_repo_token_never_reaches_the_cdn(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files(), private_token="hf_secret")
    with pytest.raises(FetchError, match="not found"):
        run(f"hf://{REPO}", opts)
    report = run(f"hf://{REPO}", HubOptions(**{**opts.__dict__, "token": "hf_secret"}))
    assert {f.path for f in report.subject.files} >= {"adapter_model.safetensors"}
    cdn = [r for r in hub.requests if r.server == "cdn"]
    assert cdn and not any(r.authorized for r in cdn)


def test_oversized_repo_is_refused_before_any_download(hub: HubServer,
                                                       opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files())
    with pytest.raises(FetchError, match="over the"):
        run(f"hf://{REPO}", HubOptions(**{**opts.__dict__, "max_repo_bytes": 1000}))
    assert sum(hub.bytes_sent.values()) == 0


def test_transient_errors_are_retried(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files())
    hub.fail_next(1)
    report = run(f"hf://{REPO}", HubOptions(**{**opts.__dict__, "retries": 1}))
    assert report.subject.revision is not None
    hub.fail_next(1)
    with pytest.raises(FetchError, match="503"):
        run(f"hf://{REPO}", opts)  # retries=0


def test_hung_tree_listing_times_out(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files())
    hub.stall("/tree/", 5.0)
    quick = HubOptions(**{**opts.__dict__, "timeout_s": 0.3})
    with pytest.raises(FetchError, match="longer than"):
        scan(f"hf://{REPO}", options=ScanOptions(hub=quick,
                                                 fetch_limits=FetchLimits(max_files=100)))


def test_scan_folder_is_removed_with_the_fetched_source(hub: HubServer,
                                                        opts: HubOptions) -> None:
    import gc

    hub.add_repo(REPO, adapter_files())
    _, src = fetch(opts)
    root: Path = src.root  # type: ignore[attr-defined]
    assert (root / "adapter_config.json").is_file()
    del src
    gc.collect()
    assert not root.exists()


# -- listings, refs, redirects ------------------------------------------------------------------

def test_paginated_tree_lists_everything(tmp_path: Path, opts: HubOptions) -> None:
    files = adapter_files()
    files.update({f"extra/dir{i}/note{i}.txt": b"n" * i for i in range(5)})
    with HubServer(page_size=2) as small:
        small.add_repo(REPO, files)
        report = run(f"hf://{REPO}", HubOptions(**{**opts.__dict__, "endpoint": small.url}))
        pages = [r for r in small.requests if "/tree/" in r.path]
    assert len(pages) > 3
    assert {f.path for f in report.subject.files} == set(files)


def test_pr_ref_is_scanned_at_its_commit(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files())
    pr = adapter_files(card_base="org/base", r=16)
    pr["train.py"] = b"print('hi')\n"
    pr_sha = hub.add_commit(REPO, pr, ref="refs/pr/1")
    report = run(f"hf://{REPO}@refs/pr/1", opts)
    assert report.subject.revision == pr_sha
    assert "train.py" in {f.path for f in report.subject.files}


def test_lfs_files_come_from_the_cdn_port(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files())
    run(f"hf://{REPO}", opts)
    assert hub.cdn_url != hub.url
    cdn_paths = {r.path.rsplit("/", 1)[1] for r in hub.requests if r.server == "cdn"}
    assert cdn_paths == {"adapter_model.safetensors"}
    assert hub.sent(REPO, "adapter_config.json") > 0  # git files straight from resolve


def test_triage_stays_bounded_when_the_server_ignores_range(hub: HubServer,
                                                            opts: HubOptions) -> None:
    files = adapter_files()
    hub.add_repo(REPO, files)
    hub.ignore_range = True
    report = run(f"hf://{REPO}", opts)
    assert not {"AS101", "AS102"} & set(ids(report))
    assert report.verdict.decision is not Decision.FAIL


def test_server_honours_range(hub: HubServer) -> None:
    import httpx

    hub.add_repo(REPO, {"a.bin": bytes(range(256)) * 100})
    sha = hub.add_commit(REPO, {"a.bin": bytes(range(256)) * 100})
    url = f"{hub.url}/{REPO}/resolve/{sha}/a.bin"
    r = httpx.get(url, headers={"Range": "bytes=10-19"}, follow_redirects=True)
    assert r.status_code == 206 and r.content == bytes(range(10, 20))
    assert r.headers["Content-Range"] == "bytes 10-19/25600"


# -- evidence: Hub scan status, base model, listing consistency, paths --------------------------

def test_hub_scan_status_pending_and_flagged(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files(),
                 security={"scansDone": False, "filesWithIssues": [
                     {"path": "adapter_model.safetensors", "level": "unsafe"}]})
    found = ids(run(f"hf://{REPO}", opts))
    assert "AS104" in found and "AS105" in found and "AS106" not in found
    hub.set_security(REPO, {"scansDone": True, "filesWithIssues": []})
    found = ids(run(f"hf://{REPO}", opts))
    assert "AS106" in found and "AS104" not in found and "AS105" not in found


def test_base_model_disagreement(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files(card_base="org/other"))
    emit, src = fetch(opts)
    assert [f.rule_id for f in emit.findings if f.rule_id == "AS103"] == ["AS103"]
    assert src.base_model_hint == "org/base"  # type: ignore[attr-defined]


def test_card_only_base_model_is_the_hint(hub: HubServer, opts: HubOptions) -> None:
    files = adapter_files(card_base="[org/base, org/base-instruct]")
    files["adapter_config.json"] = json.dumps(
        factories.adapter_config(base_model_name_or_path=None)).encode()
    hub.add_repo(REPO, files)
    emit, src = fetch(opts)
    assert src.base_model_hint == "org/base"  # type: ignore[attr-defined]
    assert not [f for f in emit.findings if f.rule_id == "AS103"]


def test_listing_inconsistency(hub: HubServer, opts: HubOptions) -> None:
    hub.add_repo(REPO, adapter_files())
    hub.set_tree_override(REPO, "adapter_config.json", {"oid": "0" * 40})
    found = ids(run(f"hf://{REPO}", opts))
    assert "AS107" in found and "AS101" not in found  # model info's digest is the one used


def test_negative_size_never_counts_toward_the_repo_total(opts: HubOptions) -> None:
    from adapterscan.fetch.hub_verify import Announced

    emit = Emitter(load_ruleset())
    fetcher = HubFetcher(REPO, None, opts, FetchLimits())
    kept = fetcher._bounded({"pad.txt": Announced("pad.txt", -(10**12), "0" * 40, None),
                             "a.json": Announced("a.json", 2, "1" * 40, None)}, emit)
    assert list(kept) == ["a.json"]
    assert [f.rule_id for f in emit.findings] == ["AS107"]
    assert [s.path for s in emit.skipped] == ["pad.txt"]


def test_unsafe_listed_path_is_never_downloaded(hub: HubServer, opts: HubOptions,
                                                tmp_path: Path) -> None:
    files = adapter_files()
    files["a/../../escape.txt"] = b"x"
    hub.add_repo(REPO, files)
    report = run(f"hf://{REPO}", opts)
    assert "AS108" in ids(report)
    assert "a/../../escape.txt" not in {f.path for f in report.subject.files}
    assert not list(tmp_path.rglob("escape.txt"))


# -- offline ------------------------------------------------------------------------------------

def test_offline_scans_a_pinned_sha_from_the_cache(hub: HubServer, opts: HubOptions,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    files = adapter_files()
    sha = hub.add_repo(REPO, files)
    run(f"hf://{REPO}@{sha}", opts)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(hub.requests)
    report = run(f"hf://{REPO}@{sha}", opts)
    assert len(hub.requests) == before  # no network at all
    assert report.subject.revision == sha
    assert {f.path: f.sha256 for f in report.subject.files} == {
        p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
    assert "AS104" in ids(report)  # the Hub's scan status is unknown offline
    with pytest.raises(FetchError, match="not a full commit sha"):
        run(f"hf://{REPO}@main", opts)


def test_offline_tampered_cache_is_caught(hub: HubServer, opts: HubOptions,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sha = hub.add_repo(REPO, adapter_files())
    run(f"hf://{REPO}@{sha}", opts)
    assert opts.cache_dir is not None
    blob = next(b for b in (opts.cache_dir / "hub").glob("models--acme--lora/blobs/*")
                if b.stat().st_size > 1000)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    report = run(f"hf://{REPO}@{sha}", opts)
    assert [f.location.file for f in report.findings if f.rule_id == "AS101"] == [
        "adapter_model.safetensors"]
