"""The FastAPI application: webhook and admission endpoints, reports, dashboard, metrics."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from adapterscan.errors import UsageError
from adapterscan.integrations.server.dashboard import admission_page, index_page
from adapterscan.integrations.server.metrics import Metrics
from adapterscan.integrations.server.queue import Job, JobQueue, QueueFull, VerdictRow
from adapterscan.integrations.server.webhook import (
    REPO_RE,
    SHA_RE,
    PayloadError,
    Revision,
    revisions_to_scan,
)
from adapterscan.integrations.server.worker import (
    Notifier,
    Scanner,
    Signer,
    WorkerConfig,
    WorkerPool,
)

log = logging.getLogger("adapterscan.server")


@dataclass(frozen=True)
class ServerConfig:
    db: Path
    webhook_secret: str
    api_token: str | None = None
    workers: int = 2
    max_body_bytes: int = 1024 * 1024
    max_pending: int = 10_000
    policy_digest: str = "default"
    worker: WorkerConfig = field(default_factory=WorkerConfig)


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked bodies have no Content-Length: count while reading
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _job_json(job: Job, verdict: VerdictRow | None, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": job.id, "repo": job.repo, "revision": job.revision,
                           "ref": job.ref, "origin": job.origin, "status": job.status,
                           "attempts": job.attempts}
    if verdict is not None:
        out["verdict"] = {"decision": verdict.decision, "exit_code": verdict.exit_code,
                          "error": verdict.error, "recorded_at": verdict.recorded_at}
        if full:
            out["report"] = json.loads(verdict.report_json) if verdict.report_json else None
            out["attestation"] = (json.loads(verdict.attestation_json)
                                  if verdict.attestation_json else None)
    return out


def create_app(config: ServerConfig, scanner: Scanner, *, signer: Signer | None = None,
               notifier: Notifier | None = None) -> FastAPI:
    if not config.webhook_secret:
        raise UsageError("no webhook secret configured: refusing to run an open endpoint",
                         hint="pass --webhook-secret or set ADAPTERSCAN_WEBHOOK_SECRET")
    queue = JobQueue(config.db, max_pending=config.max_pending)
    metrics = Metrics()
    pool = WorkerPool(queue, scanner, workers=config.workers, config=config.worker,
                      metrics=metrics, signer=signer, notifier=notifier)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool.start()
        yield
        pool.stop()

    app = FastAPI(title="adapterscan admission service", lifespan=lifespan, docs_url=None,
                  redoc_url=None)

    def answer(route: str, status: int, body: dict[str, Any]) -> JSONResponse:
        metrics.request(route, status)
        return JSONResponse(body, status_code=status)

    async def enqueue_from(request: Request, route: str, origin: str,
                           parse: Any) -> JSONResponse:
        try:
            raw = await _read_body(request, config.max_body_bytes)
        except BodyTooLarge:
            return answer(route, 413, {"error": f"body over {config.max_body_bytes} bytes"})
        try:
            revisions = parse(json.loads(raw))
        except (ValueError, PayloadError) as exc:
            return answer(route, 422, {"error": f"malformed payload: {exc}"})
        jobs = []
        try:
            for rev in revisions:
                job, created = queue.enqueue(rev.repo, rev.sha, config.policy_digest,
                                             ref=rev.ref, origin=origin)
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
        given = request.headers.get("x-webhook-secret", "")
        if not hmac.compare_digest(given.encode(), config.webhook_secret.encode()):
            return answer("hook", 401, {"error": "bad or missing X-Webhook-Secret"})
        return await enqueue_from(request, "hook", "webhook", revisions_to_scan)

    @app.post("/v1/admissions")
    async def admissions(request: Request) -> JSONResponse:
        if config.api_token is None:
            return answer("admissions", 403, {"error": "API disabled: no --api-token set"})
        auth = request.headers.get("authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {config.api_token}".encode()):
            return answer("admissions", 401, {"error": "bad or missing bearer token"})
        return await enqueue_from(request, "admissions", "api", _admission_request)

    @app.get("/v1/admissions/{job_id}")
    def admission(job_id: str) -> JSONResponse:
        found = queue.get(job_id)
        if found is None:
            return answer("admission", 404, {"error": f"no admission {job_id}"})
        return answer("admission", 200, _job_json(*found, full=True))

    @app.get("/v1/repos/{owner}/{name}/revisions/{sha}")
    def revision(owner: str, name: str, sha: str) -> JSONResponse:
        found = queue.find(f"{owner}/{name}", sha)
        if not found:
            return answer("revision", 404, {"error": f"{owner}/{name}@{sha} was never admitted"})
        return answer("revision", 200, _job_json(*found[0], full=True))

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return answer("healthz", 200, {"ok": True, "jobs": queue.counts()})

    @app.get("/metrics")
    def metrics_route() -> Response:
        return PlainTextResponse(metrics.render(queue.counts()),
                                 media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(index_page(queue.recent(200), queue.verdict_counts()))

    @app.get("/admissions/{job_id}", response_class=HTMLResponse)
    def dashboard_job(job_id: str) -> HTMLResponse:
        found = queue.get(job_id)
        if found is None:
            return HTMLResponse("<h1>not found</h1>", status_code=404)
        return HTMLResponse(admission_page(*found))

    return app


def _admission_request(payload: Any) -> list[Revision]:
    if not isinstance(payload, dict):
        raise PayloadError("body must be a JSON object {repo, revision}")
    repo, rev = payload.get("repo"), payload.get("revision")
    if not isinstance(repo, str) or not REPO_RE.match(repo):
        raise PayloadError("repo must be 'owner/name'")
    if not isinstance(rev, str) or not SHA_RE.match(rev):
        raise PayloadError("revision must be a 40-hex commit sha (resolve branches first)")
    return [Revision(repo, rev, None)]
