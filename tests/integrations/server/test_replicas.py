"""Three service replicas on one PostgreSQL queue: nothing lost, nothing scanned twice into two
verdicts, when one replica is killed with SIGKILL in the middle of its scans.

The replicas are real processes on one throwaway PostgreSQL cluster (tests/pgserver.py); scans are
static scans of repos served by the local Hub server.
"""

from __future__ import annotations

import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.hubserver import HubServer
from tests.integrations.server.service import (
    READ,
    SECRET,
    Service,
    adapter_files,
    delivery,
    from_address,
    slow_scans,
    wait_done,
)

N_REPOS = 60
DELIVERIES_PER_REPO = 5  # 300 deliveries: each repo's push reaches the replicas five times


def _replica(svc: Service) -> str:
    assert svc.proc is not None
    return f"{socket.gethostname()}:{svc.proc.pid}"  # what the queue records as claimed_by


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_three_replicas_one_killed_mid_scan_every_job_one_verdict(
        tmp_path: Path, hub: HubServer, pg_url: str) -> None:
    shas = {f"acme/lora-{i}": hub.add_repo(f"acme/lora-{i}", adapter_files(i))
            for i in range(N_REPOS)}
    slow_scans(hub)  # scans take long enough that the kill lands while some are in flight
    replicas = [Service(tmp_path, hub, db=pg_url, args=("--lease", "3")) for _ in range(3)]
    for svc in replicas:  # all three start at once: they migrate the empty database together
        svc.launch()
    try:
        for svc in replicas:
            svc.wait_ready()
        deliveries = [(i, r, s) for r, s in shas.items() for i in range(DELIVERIES_PER_REPO)]
        random.Random(17).shuffle(deliveries)

        def deliver(item: tuple[int, str, str]) -> httpx.Response:
            i, repo, sha = item
            # Each repo's five deliveries reach all three replicas.
            svc = replicas[(int(repo.rsplit("-", 1)[1]) + i) % 3]
            return httpx.post(f"{svc.url}/hooks/huggingface",
                              json=delivery(repo, sha, private=False),
                              headers={"X-Webhook-Secret": SECRET}, timeout=30)

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(deliver, deliveries))
        assert [a.status_code for a in answers] == [202] * len(deliveries)
        accepted = [j for a in answers for j in a.json()["jobs"]]
        jobs = {j["id"] for j in accepted}
        assert len(jobs) == N_REPOS  # one job per (repo, sha), whichever replica got it
        assert sum(not j["duplicate"] for j in accepted) == N_REPOS  # created exactly once

        victim, survivors = replicas[0], replicas[1:]
        name = _replica(victim)
        with psycopg.connect(pg_url, autocommit=True) as db:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                held = db.execute("SELECT COUNT(*) FROM jobs WHERE status='running' AND "
                                  "claimed_by=%s", (name,)).fetchone()
                done = db.execute("SELECT COUNT(*) FROM verdicts").fetchone()
                if held and held[0] and done and done[0] >= 3:
                    break
                time.sleep(0.02)
            children = victim.scan_processes()
            victim.kill9()
            in_flight = {r[0] for r in db.execute(
                "SELECT id FROM jobs WHERE status='running' AND claimed_by=%s", (name,))}
        assert in_flight, "the victim held no job when it was killed"
        assert len(children) == 2
        results = wait_done(survivors[0].url, jobs, timeout=240)
        with psycopg.connect(pg_url) as db:
            per_job = dict(db.execute("SELECT job_id, COUNT(*) FROM verdicts GROUP BY job_id")
                           .fetchall())
            rows = {r[0]: r[1:] for r in db.execute(
                "SELECT id, attempts, claimed_by FROM jobs WHERE id = ANY(%s)",
                (list(in_flight),))}
            by_replica = dict(db.execute("SELECT claimed_by, COUNT(*) FROM jobs GROUP BY "
                                         "claimed_by").fetchall())
    finally:
        for svc in replicas:
            svc.stop()
    assert set(per_job) == jobs and set(per_job.values()) == {1}
    # The victim's jobs were taken over once their leases expired, by the replicas still alive.
    for attempts, claimed_by in rows.values():
        assert attempts >= 2 and claimed_by in {_replica(s) for s in survivors}
    assert all(by_replica.get(_replica(s), 0) > 0 for s in survivors)
    # A replica's death is no scan failure: no error verdicts.
    assert {r["verdict"]["decision"] for r in results.values()} <= {"pass", "warn"}
    assert all(r["report"]["subject"]["revision"] == shas[r["repo"]] for r in results.values())
    # Its scan processes did not outlive it.
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in children if _alive(p)]


def test_replica_killed_before_it_answers_never_loses_a_202(tmp_path: Path, hub: HubServer,
                                                           pg_url: str) -> None:
    """A 202 means committed: after a SIGKILL right after the answers, another replica reads
    every accepted job."""
    shas = {f"acme/q-{i}": hub.add_repo(f"acme/q-{i}", adapter_files(i)) for i in range(10)}
    first = Service(tmp_path, hub, db=pg_url, args=("--workers", "1"))
    second = Service(tmp_path, hub, db=pg_url, args=("--workers", "1"))
    first.start()
    try:
        ids = [httpx.post(f"{first.url}/hooks/huggingface", json=delivery(r, s, private=False),
                          headers={"X-Webhook-Secret": SECRET}, timeout=30).json()["jobs"][0]["id"]
               for r, s in shas.items()]
        first.kill9()
        second.start()
        results = wait_done(second.url, set(ids), timeout=120)
    finally:
        first.stop()
        second.stop()
    assert {r["verdict"]["decision"] for r in results.values()} <= {"pass", "warn"}


def test_failed_credentials_count_at_every_replica(tmp_path: Path, hub: HubServer,
                                                  pg_url: str) -> None:
    """A guesser gets ten tries in all, not ten per replica it reaches."""
    first = Service(tmp_path, hub, db=pg_url, args=("--workers", "1"))
    second = Service(tmp_path, hub, db=pg_url, args=("--workers", "1"))
    for svc in (first, second):
        svc.launch()
    try:
        for svc in (first, second):
            svc.wait_ready()
        wrong = {"Authorization": "Bearer wrong-token-0123456789abcdef"}
        with from_address("127.0.0.21") as guesser, from_address("127.0.0.22") as other:
            statuses = [guesser.get(f"{svc.url}/v1/admissions/{'0' * 32}", headers=wrong)
                        .status_code for svc in (first, second) * 5]
            assert statuses == [401] * 10
            for svc in (first, second):  # now limited everywhere, the right token included
                limited = guesser.get(f"{svc.url}/v1/admissions/{'0' * 32}", headers=READ)
                assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
            assert other.get(f"{second.url}/v1/admissions/{'0' * 32}",
                             headers=READ).status_code == 404  # another address is not
    finally:
        first.stop()
        second.stop()
