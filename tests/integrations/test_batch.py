from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapterscan._version import __version__
from adapterscan.integrations.batch import (
    BatchOptions,
    ItemResult,
    done_sources,
    read_sources,
    run_batch,
)
from tests.factories import raw_safetensors, write_adapter
from tests.hidden_modules import env_without


def _corpus(tmp_path: Path) -> list[str]:
    good = [write_adapter(tmp_path / f"good{i}", seed=i) for i in range(3)]
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    # Header length far past the end of the file: a structural safetensors finding.
    (hostile / "adapter_model.safetensors").write_bytes(raw_safetensors(b"{}", header_len=10**9))
    missing = tmp_path / "does-not-exist"
    return [str(p) for p in (*good, hostile, missing)]


def test_read_sources_ignores_comments_and_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "in.txt"
    f.write_text("# adapters\na\n\nb  # second\na\n")
    assert read_sources(f) == ["a", "b"]


def test_local_batch_isolates_failures_and_resumes(tmp_path: Path) -> None:
    sources = _corpus(tmp_path)
    out = tmp_path / "results.jsonl"
    first = run_batch(sources[:2], out, engine="local", options=BatchOptions(workers=2))
    assert len(first) == 2
    results = run_batch(sources, out, engine="local", options=BatchOptions(workers=2))
    assert sorted(r.source for r in results) == sorted(sources[2:])  # first two resumed
    assert done_sources(out) == set(sources)
    by_source = {r.source: r for r in (*first, *results)}
    assert by_source[sources[-1]].status == "error"  # missing folder: a result, not a crash
    assert by_source[sources[-2]].status == "ok"
    assert by_source[sources[-2]].exit_code == 1 and by_source[sources[-2]].decision == "fail"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == len(sources)


def test_timeout_kills_the_item_not_the_batch(tmp_path: Path) -> None:
    src = str(write_adapter(tmp_path / "a"))
    [r] = run_batch([src], tmp_path / "o.jsonl", engine="local",
                    options=BatchOptions(timeout_s=0.01))
    assert r.status == "timeout" and r.exit_code == 3


def test_torn_last_line_is_ignored_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text(ItemResult("x", "ok", 0).to_json() + "\n{\"source\": \"y\", \"sta")
    assert done_sources(out) == {"x"}


@pytest.mark.slow
def test_ray_engine_matches_local_engine_item_for_item(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    sources = _corpus(tmp_path)
    opts = BatchOptions(workers=2, timeout_s=300)
    local = run_batch(sources, tmp_path / "local.jsonl", engine="local", options=opts)
    ray_results = run_batch(sources, tmp_path / "ray.jsonl", engine="ray", options=opts)
    assert {r.source: r.comparable() for r in local} == \
        {r.source: r.comparable() for r in ray_results}


def test_worker_without_torch_reports_the_extra_per_item(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    """Scan processes see an environment without the probe extra (as Ray nodes without torch
    would): each item is an error naming the extra, no traceback, and the version is recorded."""
    src = str(write_adapter(tmp_path / "a"))
    # Inherited by the spawned scan process, not seen by this one.
    monkeypatch.setenv("PYTHONPATH", env_without(tmp_path, ["torch"])["PYTHONPATH"])
    [r] = run_batch([src], tmp_path / "o.jsonl", engine="local",
                    options=BatchOptions(base="reference"))
    assert r.status == "error" and r.exit_code == 2
    assert "needs the probe extra: pip install 'adapterscan[probe]' (not installed: torch)" \
        in (r.error or "")
    assert "Traceback" not in capfd.readouterr().err
    line = json.loads((tmp_path / "o.jsonl").read_text())
    assert line["tool_version"] == __version__
