"""CI smoke of the fuzzing harnesses (issue 25): each one runs a couple of thousand
coverage-guided executions from its seeds and nothing escapes, hangs or blows the memory bound.
The measured run (100,000 executions each) is `python -m benchmarks.run_all bench_fuzz`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.fuzz import runner, seeds

pytest.importorskip("atheris")

RUNS = int(os.environ.get("ADAPTERSCAN_FUZZ_SMOKE_RUNS", "2000"))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, runner.FuzzResult]:
    work: Path = tmp_path_factory.mktemp("fuzz")
    done = runner.run_all(seeds.HARNESSES, RUNS, work, timeout_s=120,
                          workers=min(4, os.cpu_count() or 1))
    return {r.name: r for r in done}


@pytest.mark.parametrize("name", seeds.HARNESSES)
def test_harness_runs_clean(results: dict[str, runner.FuzzResult], name: str) -> None:
    r = results[name]
    assert r.exit_code == 0, r.log_tail
    assert r.executions >= RUNS, r.log_tail
    assert not r.crashes, "\n".join(r.crashes)
    assert (r.hangs, r.memory_errors) == (0, 0)
    assert r.edges > 0  # the harness reached instrumented adapterscan code


def test_every_harness_has_seeds_and_a_dictionary(tmp_path: Path) -> None:
    seeds.build(tmp_path, ("webhook",))
    assert any((tmp_path / "seeds" / "webhook").iterdir())
    assert (tmp_path / "webhook.dict").read_text().startswith('"')
    assert set(seeds.HARNESSES) == {p.stem[2:] for p in
                                    Path(seeds.__file__).parent.glob("h_*.py")}
