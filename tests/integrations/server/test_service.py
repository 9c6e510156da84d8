"""The admission service as a real process on 127.0.0.1, against the tests' Hub server."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.provenance.dsse import pae
from adapterscan.provenance.keys import generate_private_key, write_private_key
from tests.factories import adapter_config, lora_tensors, safetensors_bytes
from tests.hubserver import HubServer

SECRET = "s3cret-webhook"
N_REPOS = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _adapter_files(seed: int) -> dict[str, bytes]:
    return {"adapter_config.json": json.dumps(adapter_config()).encode(),
            "adapter_model.safetensors": safetensors_bytes(lora_tensors(seed=seed))}


class Service:
    def __init__(self, tmp: Path, hub: HubServer, sign_key: Path | None = None) -> None:
        self.sign_key = sign_key
        self.db = tmp / "admissions.db"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.hub = hub
        self.log = tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, ADAPTERSCAN_WEBHOOK_SECRET=SECRET, HF_HUB_DISABLE_XET="1",
                   HF_HOME=str(self.db.parent / "hf-home"), ADAPTERSCAN_API_TOKEN="tok")
        cmd = [sys.executable, "-m", "adapterscan", "serve", "--db", str(self.db), "--port",
               str(self.port), "--workers", "2", "--endpoint", self.hub.url, "--lease", "2",
               "--max-body", "65536"]
        if self.sign_key is not None:
            cmd += ["--sign-key", str(self.sign_key)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server did not start:\n" + self.log.read_text())

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as h:
        yield h


def _delivery(repo: str, sha: str, ref: str = "refs/heads/main") -> dict[str, Any]:
    return {"event": {"action": "update", "scope": "repo.content"},
            "repo": {"type": "model", "name": repo, "headSha": sha},
            "updatedRefs": [{"ref": ref, "oldSha": None, "newSha": sha}]}


def _wait_done(url: str, jobs: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    out: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for job in jobs - set(out):
            body = httpx.get(f"{url}/v1/admissions/{job}", timeout=5).json()
            if "verdict" in body:
                out[job] = body
        if len(out) == len(jobs):
            return out
        time.sleep(0.3)
    raise AssertionError(f"{len(jobs) - len(out)} jobs never finished")


@pytest.mark.slow
def test_concurrent_deliveries_kill9_restart_exactly_one_verdict(tmp_path: Path,
                                                                  hub: HubServer) -> None:
    shas = {f"acme/lora-{i}": hub.add_repo(f"acme/lora-{i}", _adapter_files(i))
            for i in range(N_REPOS)}
    real_resolve = hub.resolve

    def slow_resolve(*a: Any, **kw: Any) -> Any:
        time.sleep(0.05)  # scans take long enough that the kill lands mid-processing
        return real_resolve(*a, **kw)

    hub.resolve = slow_resolve  # type: ignore[method-assign]
    svc = Service(tmp_path, hub)
    svc.start()
    try:
        # 200 concurrent deliveries: every repo delivered 10 times (duplicates must dedupe).
        deliveries = [(r, s) for r, s in shas.items() for _ in range(10)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda rs: httpx.post(
                f"{svc.url}/hooks/huggingface", json=_delivery(*rs),
                headers={"X-Webhook-Secret": SECRET}, timeout=30), deliveries))
        assert all(a.status_code == 202 for a in answers)
        jobs = {j["id"] for a in answers for j in a.json()["jobs"]}
        assert len(jobs) == N_REPOS  # one job per (repo, sha)
        # Kill -9 while some verdicts are recorded and others are in flight.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = httpx.get(f"{svc.url}/healthz", timeout=5).json()["jobs"]["done"]
            if done >= 3:
                break
            time.sleep(0.05)
        svc.kill9()
        svc.start()
        results = _wait_done(svc.url, jobs, timeout=240)
    finally:
        svc.stop()
    with sqlite3.connect(svc.db) as db:
        per_job = dict(db.execute("SELECT job_id, COUNT(*) FROM verdicts GROUP BY job_id"))
        attempts = [a for (a,) in db.execute("SELECT attempts FROM jobs")]
    assert set(per_job) == jobs and set(per_job.values()) == {1}
    assert any(a >= 2 for a in attempts), "no job was in flight at the kill"
    assert {r["verdict"]["decision"] for r in results.values()} <= {"pass", "warn"}
    some = next(iter(results.values()))
    assert some["report"]["subject"]["revision"] == shas[some["repo"]]


def test_auth_limits_malformed_and_dashboard(tmp_path: Path, hub: HubServer) -> None:
    sha = hub.add_repo("acme/one", _adapter_files(0))
    key = generate_private_key()
    write_private_key(tmp_path / "server.pem", key)
    svc = Service(tmp_path, hub, sign_key=tmp_path / "server.pem")
    svc.start()
    try:
        hook = f"{svc.url}/hooks/huggingface"
        assert httpx.post(hook, json=_delivery("acme/one", sha),
                          headers={"X-Webhook-Secret": "wrong"}).status_code == 401
        assert httpx.post(hook, json=_delivery("acme/one", sha)).status_code == 401
        assert httpx.post(hook, content=b"{not json", headers={
            "X-Webhook-Secret": SECRET, "Content-Type": "application/json"}).status_code == 422
        assert httpx.post(hook, json={"event": {}}, headers={
            "X-Webhook-Secret": SECRET}).status_code == 422
        big = {"pad": "x" * 70000, **_delivery("acme/one", sha)}
        assert httpx.post(hook, json=big, headers={"X-Webhook-Secret": SECRET}
                          ).status_code == 413
        api = f"{svc.url}/v1/admissions"
        assert httpx.post(api, json={"repo": "acme/one", "revision": sha}).status_code == 401
        r = httpx.post(api, json={"repo": "acme/one", "revision": sha},
                       headers={"Authorization": "Bearer tok"})
        assert r.status_code == 202
        job = r.json()["jobs"][0]["id"]
        result = _wait_done(svc.url, {job}, timeout=120)[job]
        assert result["verdict"]["decision"] in ("pass", "warn")
        by_rev = httpx.get(f"{svc.url}/v1/repos/acme/one/revisions/{sha}").json()
        assert by_rev["id"] == job and by_rev["report"]["subject"]["revision"] == sha
        _check_attestation(by_rev["attestation"], key, sha)
        metrics = httpx.get(f"{svc.url}/metrics").text
        assert 'adapterscan_http_requests_total{route="hook",status="401"} 2' in metrics
        assert 'adapterscan_jobs{status="done"} 1' in metrics
        _check_dashboard_in_browser(svc.url, job, tmp_path)
    finally:
        svc.stop()


def _check_attestation(bundle: dict[str, Any], key: Any, sha: str) -> None:
    """The stored verdict is signed by the server's key over a statement of this revision."""
    env = bundle["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    key.public_key().verify(base64.b64decode(env["signatures"][0]["sig"]),
                            pae(env["payloadType"], payload), ec.ECDSA(hashes.SHA256()))
    assert sha in payload.decode()


def _check_dashboard_in_browser(url: str, job: str, tmp: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            raise AssertionError("CI must install Debian's chromium for the dashboard test")
        pytest.skip("chromium not installed")
    for page, needle in ((f"{url}/", job[:12]), (f"{url}/admissions/{job}", "acme/one")):
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp / 'chrome'}", "--dump-dom", page],
            capture_output=True, text=True, timeout=60, check=True).stdout
        assert needle in dom and "data-decision=" in dom, dom[:2000]
