"""`adapterscan serve` refuses unsafe access settings before it listens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app
from tests.hidden_modules import env_without


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTERSCAN_WEBHOOK_SECRET", "s3cret-webhook")
    for var in ("ADAPTERSCAN_API_TOKEN", "ADAPTERSCAN_READ_TOKEN", "ADAPTERSCAN_METRICS_TOKEN"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("flags", [["--read-token", "short"], ["--api-token", "tok"],
                                   ["--metrics-token", "0123456789"]])
def test_short_tokens_stop_the_service(tmp_path: Path, flags: list[str]) -> None:
    res = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "q.db"), *flags])
    assert res.exit_code == 2 and "at least 16" in res.output


@pytest.mark.usefixtures("env")
def test_public_reads_takes_public_or_all(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "q.db"),
                                   "--public-reads", "everything"])
    assert res.exit_code == 2 and "public" in res.output
    res = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "q.db"), "--public-reads"])
    assert res.exit_code == 2  # a bare flag is refused, never taken as "open everything"


def _serve(tmp_path: Path, *args: str, shadow_psycopg: bool = False
           ) -> subprocess.CompletedProcess[str]:
    """`adapterscan serve` as a real process; `shadow_psycopg` makes psycopg absent there, as
    it is where the [postgres] extra is not installed."""
    env = env_without(tmp_path, ["psycopg"] if shadow_psycopg else [])
    env["ADAPTERSCAN_WEBHOOK_SECRET"] = "s3cret-webhook"
    return subprocess.run([sys.executable, "-m", "adapterscan", "serve", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_postgresql_queue_without_psycopg_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    res = _serve(tmp_path, "--db", "postgresql://bob:hunter2@127.0.0.1:1/queue",
                 shadow_psycopg=True)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "adapterscan[postgres]" in lines[0], res.stderr
    assert "hunter2" not in res.stderr + res.stdout


def test_unreachable_postgresql_queue_stops_the_service_without_showing_the_password(
        tmp_path: Path) -> None:
    res = _serve(tmp_path, "--db", "postgresql://bob:hunter2@127.0.0.1:1/queue")
    assert res.returncode == 2
    assert "cannot connect to the PostgreSQL queue at bob@127.0.0.1:1/queue" in res.stderr
    assert "hunter2" not in res.stderr + res.stdout


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("flags", [["--scan-timeout", "0"], ["--workers", "0"],
                                   ["--lease", "-1"]])
def test_nonsense_limits_stop_the_service(tmp_path: Path, flags: list[str]) -> None:
    res = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "q.db"), *flags])
    assert res.exit_code == 2 and "--scan-timeout" in res.output
