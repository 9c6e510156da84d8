"""Admission service read access: what a credential check costs per read, and what a guesser
gets before the per-address failure limit answers 429."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks.common import BenchTable
from tests.hubserver import HubServer
from tests.integrations.server.service import (
    READ,
    SECRET,
    Service,
    adapter_files,
    delivery,
    wait_done,
)

N = 500
GUESSES = 100


def _latencies(client: httpx.Client, url: str, headers: dict[str, str]) -> list[float]:
    out = []
    for _ in range(N):
        t0 = time.perf_counter()
        r = client.get(url, headers=headers)
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.status_code
    return out


def _row(name: str, lat: list[float]) -> tuple[str, ...]:
    q = statistics.quantiles(lat, n=100)
    return (name, str(N), f"{q[49] * 1000:.2f}", f"{q[98] * 1000:.2f}")


def _session(client: httpx.Client, url: str) -> dict[str, str]:
    import re

    page = client.get(f"{url}/login").text
    csrf = re.search(r"name='csrf' value='([^']+)'", page)
    assert csrf is not None
    client.post(f"{url}/login", data={"token": READ["Authorization"][7:], "csrf": csrf.group(1)},
                headers={"Origin": url})
    return {"Cookie": f"adapterscan_session={client.cookies['adapterscan_session']}"}


def run() -> BenchTable:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, HubServer() as hub:
        sha = hub.add_repo("bench/open", adapter_files(0))
        svc = Service(Path(tmp), hub)
        svc.start()
        try:
            r = httpx.post(f"{svc.url}/hooks/huggingface", headers={"X-Webhook-Secret": SECRET},
                           json=delivery("bench/open", sha, private=False))
            job = r.json()["jobs"][0]["id"]
            wait_done(svc.url, {job}, timeout=120)
            url = f"{svc.url}/v1/admissions/{job}"
            with httpx.Client() as c:
                size = len(c.get(url, headers=READ).content)
                rows.append(_row("read token (Bearer)", _latencies(c, url, READ)))
                rows.append(_row("dashboard session cookie", _latencies(c, url,
                                                                         _session(c, svc.url))))
            guesses: Counter[int] = Counter()
            with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.9")) as g:
                for i in range(GUESSES):
                    guesses[g.get(url, headers={"Authorization": f"Bearer guess-{i:020d}"}
                                  ).status_code] += 1
        finally:
            svc.stop()
        public = Service(Path(tmp), hub, args=("--public-reads=all",))
        public.start()
        try:
            with httpx.Client() as c:
                rows.append(_row("none (--public-reads=all)",
                                 _latencies(c, f"{public.url}/v1/admissions/{job}", {})))
        finally:
            public.stop()
    return BenchTable(
        title=f"Admission service reads: {N} sequential GET /v1/admissions/{{id}} per row",
        headers=("credential", "reads", "p50 latency (ms)", "p99 latency (ms)"),
        rows=tuple(rows),
        notes=(f"One client on 127.0.0.1, keep-alive, a done job with its report ({size} bytes; "
               "the open row is a second process on the same database). "
               f"A guesser sending {GUESSES} wrong read tokens as fast as it could from one "
               f"address got {guesses[401]} answered 401 and {guesses[429]} answered 429 "
               "(the limit is 10 failed credentials per address per 60 s)."))
