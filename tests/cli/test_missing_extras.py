"""Every command that needs an optional extra checks it first: without it, exit 2 and one line
naming the extra, before any work (nothing written, no worker started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app
from adapterscan.extras import EXTRAS
from tests.factories import write_adapter
from tests.hidden_modules import hide_here

# (command line with {tmp} for the test's folder, extra hidden, what the line names)
CASES = [
    (["demo", "--out", "{tmp}/ex"], "probe", "adapterscan demo"),
    (["examples", "build", "--out", "{tmp}/ex"], "probe", "adapterscan examples build"),
    (["reference", "build", "--out", "{tmp}/ref"], "probe", "adapterscan reference build"),
    (["baseline", "reference", "--out", "{tmp}/bank.json"], "probe",
     "adapterscan baseline reference"),
    (["scan", "{tmp}/adapter", "--base", "reference", "-o", "{tmp}/report.txt"], "probe",
     "adapterscan scan --base"),
    (["scan", "{tmp}/adapter", "--attestation-out", "{tmp}/a.sigstore.json",
      "-o", "{tmp}/report.txt"], "sign",
     "adapterscan scan --attestation-out without --sign-key (keyless signing)"),
    (["serve", "--db", "{tmp}/q.db"], "serve", "adapterscan serve"),
    (["serve", "--db", "postgresql://bob:hunter2@127.0.0.1:1/q"], "postgres",
     "adapterscan serve --db postgresql://…"),
    (["batch", "{tmp}/in.txt", "--out", "{tmp}/out.jsonl", "--engine", "ray"], "ray",
     "adapterscan batch --engine ray"),
    (["batch", "{tmp}/in.txt", "--out", "{tmp}/out.jsonl", "--base", "reference"], "probe",
     "adapterscan batch --base"),
]


@pytest.mark.parametrize(("args", "extra", "what"), CASES, ids=[c[2] for c in CASES])
def test_command_without_its_extra_exits_2_with_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], extra: str,
        what: str) -> None:
    write_adapter(tmp_path / "adapter")
    (tmp_path / "in.txt").write_text(f"{tmp_path / 'adapter'}\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.setenv("ADAPTERSCAN_WEBHOOK_SECRET", "s3cret-webhook")
    hide_here(monkeypatch, EXTRAS[extra][:1])
    res = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1, res.output
    assert lines[0] == (f"error: {what} needs the {extra} extra: pip install "
                        f"'adapterscan[{extra}]' (not installed: {EXTRAS[extra][0]})")
    assert "hunter2" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing was done


def test_keyless_signing_checked_only_without_a_key(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A key-signed attestation needs no Sigstore."""
    write_adapter(tmp_path / "adapter")
    runner = CliRunner()
    assert runner.invoke(app, ["keygen", "--out-private", str(tmp_path / "k.pem"),
                               "--out-public", str(tmp_path / "k.pub")]).exit_code == 0
    hide_here(monkeypatch, EXTRAS["sign"])
    res = runner.invoke(app, ["scan", str(tmp_path / "adapter"), "-o", str(tmp_path / "r.txt"),
                              "--sign-key", str(tmp_path / "k.pem"),
                              "--attestation-out", str(tmp_path / "a.json")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.json").is_file()
