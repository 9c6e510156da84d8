"""`adapterscan serve`: the registry admission service."""

from __future__ import annotations

import enum
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from adapterscan.cli.common import fail, require, run_or_exit, stderr_console


class PublicReads(enum.Enum):
    public = "public"
    all = "all"


def serve_command(
    db: Annotated[str, typer.Option(
        envvar="ADAPTERSCAN_DB",
        help="the durable queue: a SQLite file (one host), or a postgresql://user@host/dbname "
             "URL shared by several replicas (needs adapterscan[postgres]; give the password "
             "in PGPASSWORD or ~/.pgpass, not the URL)")] = "adapterscan-admissions.db",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8080,
    workers: Annotated[int, typer.Option(help="concurrent scans")] = 2,
    webhook_secret: Annotated[str | None, typer.Option(
        help="shared secret of the Hub webhook (default: ADAPTERSCAN_WEBHOOK_SECRET)")] = None,
    api_token: Annotated[str | None, typer.Option(
        help="bearer token for POST /v1/admissions; it also reads "
             "(default: ADAPTERSCAN_API_TOKEN)")] = None,
    read_token: Annotated[str | None, typer.Option(
        help="bearer token for the read endpoints and the dashboard login "
             "(default: ADAPTERSCAN_READ_TOKEN; prefer the variable: options show in ps)")]
    = None,
    metrics_token: Annotated[str | None, typer.Option(
        help="bearer token that reads /metrics only (default: ADAPTERSCAN_METRICS_TOKEN)")]
    = None,
    public_reads: Annotated[PublicReads | None, typer.Option(
        "--public-reads", help="reads without a credential: 'public' for public repos' jobs "
        "(refuses to start while the queue holds private ones, refuses private deliveries), "
        "'all' for every job, private repos' reports included")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Hub endpoint (default: HF_ENDPOINT)")]
    = None,
    sign_key: Annotated[Path | None, typer.Option(help="PEM key that signs every verdict")]
    = None,
    policy_file: Annotated[Path | None, typer.Option("--policy", help="policy TOML")] = None,
    notify_url: Annotated[str | None, typer.Option(
        help="POST each recorded verdict as JSON to this URL")] = None,
    max_pending: Annotated[int, typer.Option(help="queue size before answering 429")] = 10_000,
    max_body: Annotated[int, typer.Option(help="largest request body in bytes (413)")]
    = 1024 * 1024,
    lease: Annotated[float, typer.Option(help="seconds a worker holds a job between renewals "
                                         "before another may take it")] = 60.0,
    scan_timeout: Annotated[float, typer.Option(
        help="seconds a scan may run; then its process is killed and the verdict is an "
             "error")] = 600.0,
) -> None:
    """Run the admission service: Hub webhooks in, durable queue, signed verdicts out."""
    from adapterscan.integrations.server.queue import is_postgres

    require("serve", "adapterscan serve")
    if is_postgres(db):  # the URL stays out of the message: it may carry a password
        require("postgres", "adapterscan serve --db postgresql://…")
    import uvicorn

    from adapterscan.integrations.server.access import AccessConfig, ReadMode
    from adapterscan.integrations.server.app import ServerConfig, create_app
    from adapterscan.integrations.server.runtime import make_notifier, make_setup
    from adapterscan.integrations.server.worker import WorkerConfig
    from adapterscan.policy.policy import Policy, load_policy

    secret = webhook_secret or os.environ.get("ADAPTERSCAN_WEBHOOK_SECRET")
    if not secret:
        fail("no webhook secret: pass --webhook-secret or set ADAPTERSCAN_WEBHOOK_SECRET "
             "(the service refuses to run an open endpoint)")
    if workers < 1 or scan_timeout <= 0 or lease <= 0:
        fail("--workers must be at least 1, --scan-timeout and --lease positive")
    policy = run_or_exit(lambda: load_policy(policy_file)) if policy_file else Policy()
    hub_endpoint = endpoint or os.environ.get("HF_ENDPOINT")
    api = api_token or os.environ.get("ADAPTERSCAN_API_TOKEN")
    readers = tuple(dict.fromkeys(t for t in (
        read_token or os.environ.get("ADAPTERSCAN_READ_TOKEN"), api) if t))
    mode = ReadMode(public_reads.value) if public_reads else ReadMode.CREDENTIAL
    access = run_or_exit(lambda: AccessConfig(
        mode=mode, read_tokens=readers,
        metrics_token=metrics_token or os.environ.get("ADAPTERSCAN_METRICS_TOKEN")))
    if mode is ReadMode.CREDENTIAL and not readers:
        stderr_console().print("note: no --read-token or --api-token: nobody can read verdicts, "
                               "reports or the dashboard (only /healthz answers)")
    config = ServerConfig(db=db, webhook_secret=secret, api_token=api, workers=workers,
                          max_body_bytes=max_body, max_pending=max_pending,
                          policy_digest=policy.source_digest or "default",
                          worker=WorkerConfig(lease_s=lease, scan_timeout_s=scan_timeout),
                          access=access)
    setup = run_or_exit(lambda: make_setup(policy, hub_endpoint, os.environ.get("HF_TOKEN"),
                                           sign_key))
    app = run_or_exit(lambda: create_app(
        config, setup, notifier=make_notifier(notify_url) if notify_url else None))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(app, host=host, port=port, log_level="warning")
