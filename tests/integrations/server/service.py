"""The admission service as a real process on 127.0.0.1, for tests and the benchmark."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.factories import adapter_config, lora_tensors, safetensors_bytes
from tests.hubserver import HubServer

SECRET = "s3cret-webhook"
API_TOKEN = "api-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"
METRICS_TOKEN = "metrics-token-0123456789abcdef"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def adapter_files(seed: int) -> dict[str, bytes]:
    return {"adapter_config.json": json.dumps(adapter_config()).encode(),
            "adapter_model.safetensors": safetensors_bytes(lora_tensors(seed=seed))}


def slow_scans(hub: HubServer, seconds: float = 0.05) -> None:
    """Make every commit look-up of `hub` wait a little, so that scans take long enough for a
    kill to land while some are in flight."""
    real_resolve = hub.resolve

    def slow_resolve(*a: Any, **kw: Any) -> Any:
        time.sleep(seconds)
        return real_resolve(*a, **kw)

    hub.resolve = slow_resolve  # type: ignore[method-assign]


def delivery(repo: str, sha: str, ref: str = "refs/heads/main", *,
             private: bool | None = None) -> dict[str, Any]:
    """A Hub webhook payload; `private` omitted (None) like a payload that does not say."""
    body: dict[str, Any] = {"type": "model", "name": repo, "headSha": sha}
    if private is not None:
        body["private"] = private
    return {"event": {"action": "update", "scope": "repo.content"}, "repo": body,
            "updatedRefs": [{"ref": ref, "oldSha": None, "newSha": sha}]}


class Service:
    def __init__(self, tmp: Path, hub: HubServer, sign_key: Path | None = None, *,
                 args: Sequence[str] = (), env: dict[str, str] | None = None,
                 db: Path | str | None = None) -> None:
        self.sign_key = sign_key
        self.tmp = tmp
        self.db = db or tmp / "admissions.db"  # a SQLite file, or a postgresql:// URL
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.hub = hub
        self.args = tuple(args)
        self.extra_env = env or {}
        self.log = tmp / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ, ADAPTERSCAN_WEBHOOK_SECRET=SECRET, HF_HUB_DISABLE_XET="1",
                   HF_HOME=str(self.tmp / f"hf-home-{self.port}"), ADAPTERSCAN_API_TOKEN=API_TOKEN,
                   ADAPTERSCAN_READ_TOKEN=READ_TOKEN, **self.extra_env)
        cmd = [sys.executable, "-m", "adapterscan", "serve", "--db", str(self.db), "--port",
               str(self.port), "--workers", "2", "--endpoint", self.hub.url, "--lease", "2",
               "--max-body", "65536", *self.args]
        if self.sign_key is not None:
            cmd += ["--sign-key", str(self.sign_key)]
        return cmd, env

    def refused(self) -> subprocess.CompletedProcess[str]:
        """Run a start that is expected to fail before it listens."""
        cmd, env = self.command()
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting (start replicas together, then wait_ready)."""
        cmd, env = self.command()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
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

    def scan_processes(self) -> list[int]:
        """The pids of this service's scan worker processes (Linux /proc)."""
        assert self.proc is not None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (stat.parent / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            if ppid == self.proc.pid and b"spawn_main" in cmdline:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def wait_done(url: str, jobs: set[str], timeout: float,
              headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll each job until it has a verdict (with the read token unless told otherwise)."""
    deadline = time.monotonic() + timeout
    out: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for job in jobs - set(out):
            body = httpx.get(f"{url}/v1/admissions/{job}", timeout=5,
                             headers=READ if headers is None else headers).json()
            if "verdict" in body:
                out[job] = body
        if len(out) == len(jobs):
            return out
        time.sleep(0.3)
    raise AssertionError(f"{len(jobs) - len(out)} jobs never finished")


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from another loopback address (127.0.0.0/8): the
    service's per-address failure limits see it as another client."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)
