"""`adapterscan serve` refuses unsafe access settings before it listens."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app


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
