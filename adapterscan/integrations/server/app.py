"""The FastAPI application: webhook and admission endpoints, reports, dashboard, metrics.

Writes need the webhook secret or the API token; reads need a read credential unless a public
read mode says otherwise (access.py); only /healthz is open to everyone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from adapterscan.errors import UsageError
from adapterscan.integrations.server.access import (
    AccessConfig,
    ReadMode,
    accepts_job,
    bearer,
    check_start,
)
from adapterscan.integrations.server.base_queue import QueueFull
from adapterscan.integrations.server.body import BodyTooLarge, read_body
from adapterscan.integrations.server.db import Job, VerdictRow
from adapterscan.integrations.server.guard import Access, Guard
from adapterscan.integrations.server.metrics import Metrics
from adapterscan.integrations.server.pages import add_pages
from adapterscan.integrations.server.queue import open_queue
from adapterscan.integrations.server.ratelimit import FailureLimiter
from adapterscan.integrations.server.scanproc import ScanSetup
from adapterscan.integrations.server.webhook import (
    REPO_RE,
    SHA_RE,
    Delivery,
    PayloadError,
    Revision,
    parse_body,
    parse_delivery,
)
from adapterscan.integrations.server.worker import Notifier, WorkerConfig, WorkerPool

log = logging.getLogger("adapterscan.server")


@dataclass(frozen=True)
class ServerConfig:
    db: str  # a SQLite file's path, or a postgresql:// URL
    webhook_secret: str
    api_token: str | None = None
    workers: int = 2
    max_body_bytes: int = 1024 * 1024
    max_pending: int = 10_000
    policy_digest: str = "default"
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    access: AccessConfig = field(default_factory=AccessConfig)


def _job_json(job: Job, verdict: VerdictRow | None, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": job.id, "repo": job.repo, "revision": job.revision,
                           "ref": job.ref, "origin": job.origin, "status": job.status,
                           "attempts": job.attempts, "private": job.private}
    if verdict is not None:
        out["verdict"] = {"decision": verdict.decision, "exit_code": verdict.exit_code,
                          "error": verdict.error, "recorded_at": verdict.recorded_at}
        if full:
            out["report"] = json.loads(verdict.report_json) if verdict.report_json else None
            out["attestation"] = (json.loads(verdict.attestation_json)
                                  if verdict.attestation_json else None)
    return out


def create_app(config: ServerConfig, setup: ScanSetup, *,
               notifier: Notifier | None = None) -> FastAPI:
    if not config.webhook_secret:
        raise UsageError("no webhook secret configured: refusing to run an open endpoint",
                         hint="pass --webhook-secret or set ADAPTERSCAN_WEBHOOK_SECRET")
    # Connections: one per worker thread at most, and some for requests served in threads.
    queue = open_queue(config.db, max_pending=config.max_pending,
                       pool_size=config.workers + 8)
    try:
        check_start(config.access.mode, queue.count_private())
    except UsageError:
        queue.close()
        raise
    metrics = Metrics()
    guard = Guard(config.access, metrics, FailureLimiter(
        queue, config.access.max_failures, config.access.failure_window_s))
    pool = WorkerPool(queue, setup, workers=config.workers, config=config.worker,
                      metrics=metrics, notifier=notifier)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool.start()
        yield
        pool.stop()
        queue.close()

    app = FastAPI(title="adapterscan admission service", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)

    def answer(route: str, status: int, body: dict[str, Any]) -> JSONResponse:
        metrics.request(route, status)
        # Reports of private repos must not sit in a shared cache on the way.
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    def denied(route: str, access: Access) -> JSONResponse:
        resp = answer(route, access.status, {"error": _DENIALS[access.reason]})
        if access.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="adapterscan"'
        if access.retry_after:
            resp.headers["Retry-After"] = str(access.retry_after)
        return resp

    def not_found(route: str, access: Access) -> JSONResponse:
        """Unknown and not visible to this caller answer alike."""
        if not access.authenticated:
            guard.hidden(route)
        return answer(route, 404, {"error": "not found"})

    async def enqueue_from(request: Request, route: str, origin: str,
                           parse: Callable[[Any], Delivery]) -> JSONResponse:
        try:
            raw = await read_body(request, config.max_body_bytes)
        except BodyTooLarge:
            return answer(route, 413, {"error": f"body over {config.max_body_bytes} bytes"})
        try:
            delivery = parse_body(raw, parse)
        except PayloadError as exc:
            return answer(route, 422, {"error": f"malformed payload: {exc}"})
        # The database work runs in a thread: a PostgreSQL round trip must not stall the loop.
        return await run_in_threadpool(store, delivery, route, origin)

    def store(delivery: Delivery, route: str, origin: str) -> JSONResponse:
        if delivery.private:
            queue.mark_private(delivery.repo)  # hide its earlier jobs too, in every read mode
        if not all(accepts_job(r.private, config.access.mode) for r in delivery.revisions):
            return answer(route, 403, {"error": "this service runs with --public-reads=public "
                                       "and holds no private repos (or repos of unknown "
                                       "privacy): nothing was queued"})
        jobs = []
        try:
            for rev in delivery.revisions:
                job, created = queue.enqueue(rev.repo, rev.sha, config.policy_digest,
                                             ref=rev.ref, origin=origin, private=rev.private)
                jobs.append({"id": job.id, "repo": job.repo, "revision": job.revision,
                             "ref": job.ref, "duplicate": not created, "status": job.status})
        except QueueFull as exc:
            resp = answer(route, 429, {"error": f"queue full ({exc}); retry later",
                                       "accepted": jobs})
            resp.headers["Retry-After"] = "30"
            return resp
        return answer(route, 202, {"jobs": jobs})

    @app.post("/hooks/huggingface")
    async def hook(request: Request) -> JSONResponse:
        # Threads for the guard too: the failure counts are a database read.
        access = await run_in_threadpool(guard.secret, request, "hook",
                                         request.headers.get("x-webhook-secret"),
                                         (config.webhook_secret,))
        if not access.allowed:
            return denied("hook", access)
        return await enqueue_from(request, "hook", "webhook", parse_delivery)

    @app.post("/v1/admissions")
    async def admissions(request: Request) -> JSONResponse:
        if config.api_token is None:
            return answer("admissions", 403, {"error": "API disabled: no --api-token set"})
        access = await run_in_threadpool(guard.secret, request, "admissions",
                                         bearer(request.headers.get("authorization")),
                                         (config.api_token,))
        if not access.allowed:
            return denied("admissions", access)
        return await enqueue_from(request, "admissions", "api", _admission_request)

    Rows = list[tuple[Job, VerdictRow | None]]

    def read_rows(request: Request, route: str, rows: Callable[[], Rows]) -> Rows | JSONResponse:
        """The rows this caller may see, or the answer that refuses it (the credential is
        checked before the database is asked)."""
        access = guard.read(request, route)
        if not access.allowed:
            return denied(route, access)
        return guard.shown(rows(), access) or not_found(route, access)

    def one(job_id: str) -> Rows:
        found = queue.get(job_id)
        return [found] if found else []

    @app.get("/v1/admissions/{job_id}")
    def admission(request: Request, job_id: str) -> JSONResponse:
        shown = read_rows(request, "admission", lambda: one(job_id))
        if isinstance(shown, JSONResponse):
            return shown
        return answer("admission", 200, _job_json(*shown[0], full=True))

    @app.get("/v1/repos/{owner}/{name}/revisions/{sha}")
    def revision(request: Request, owner: str, name: str, sha: str) -> JSONResponse:
        shown = read_rows(request, "revision", lambda: queue.find(f"{owner}/{name}", sha))
        if isinstance(shown, JSONResponse):
            return shown
        return answer("revision", 200, _job_json(*shown[0], full=True))

    @app.get("/v1/repos/{owner}/{name}/revisions/{sha}/attestation", response_model=None)
    def attestation(request: Request, owner: str, name: str, sha: str) -> Response:
        """Only the signed attestation: what a loader verifies, never the full report."""
        shown = read_rows(request, "attestation", lambda: queue.find(f"{owner}/{name}", sha))
        if isinstance(shown, JSONResponse):
            return shown
        signed = [v.attestation_json for _, v in shown if v and v.attestation_json]
        if not signed:
            return answer("attestation", 404, {"error": "no signed verdict for this revision",
                                               "status": shown[0][0].status})
        metrics.request("attestation", 200)
        return Response(signed[0], media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return answer("healthz", 200, {"ok": True, "jobs": queue.counts(),
                                       "scan_processes": {"ready": pool.ready(),
                                                          "of": config.workers}})

    @app.get("/metrics", response_model=None)
    def metrics_route(request: Request) -> Response:
        token = config.access.metrics_token
        access = guard.read(request, "metrics", extra_tokens=(token,) if token else (),
                            anonymous_ok=config.access.mode is not ReadMode.CREDENTIAL
                            and token is None)
        if not access.allowed:
            return denied("metrics", access)
        metrics.request("metrics", 200)
        return PlainTextResponse(metrics.render(queue.counts()),
                                 media_type="text/plain; version=0.0.4",
                                 headers={"Cache-Control": "no-store"})

    add_pages(app, queue, guard)
    return app


_DENIALS = {
    "no_credential": "a read credential is required (Authorization: Bearer <token>)",
    "bad_credential": "bad credential",
    "rate_limited": "too many failed credentials from this address; retry later",
}


def _admission_request(payload: Any) -> Delivery:
    if not isinstance(payload, dict):
        raise PayloadError("body must be a JSON object {repo, revision[, private]}")
    repo, rev, private = payload.get("repo"), payload.get("revision"), payload.get("private")
    if not isinstance(repo, str) or not REPO_RE.match(repo):
        raise PayloadError("repo must be 'owner/name'")
    if not isinstance(rev, str) or not SHA_RE.match(rev):
        raise PayloadError("revision must be a 40-hex commit sha (resolve branches first)")
    if private is not None and not isinstance(private, bool):
        raise PayloadError("private must be true or false (absent: unknown, treated as private)")
    return Delivery(repo, private, (Revision(repo, rev, None, private),))
