"""CI smoke of the fuzzing harnesses (issue 25): each one runs a couple of thousand
coverage-guided executions from its seeds and nothing escapes, hangs or blows the memory bound;
then whole scans of folders made of what the fuzzer kept end with a report and exit 0-3.
The measured run (100,000 executions each) is `python -m benchmarks.run_all bench_fuzz`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adapterscan.exit_codes import ExitCode, exit_code_for
from adapterscan.pipeline import scan
from benchmarks.fuzz import runner, seeds
from benchmarks.fuzz.h_config import FILES

pytest.importorskip("atheris")

RUNS = int(os.environ.get("ADAPTERSCAN_FUZZ_SMOKE_RUNS", "2000"))
# Per harness, whichever ends first: on a machine shared with other jobs a harness may do fewer
# executions; what it ran must still be clean. 6 s each, two at a time: under 40 s in all.
SECONDS = int(os.environ.get("ADAPTERSCAN_FUZZ_SMOKE_SECONDS", "6"))


# Harness -> the file name its inputs are scanned as (names inputs lead with a config byte).
AS_FILE = {"safetensors": "adapter_model.safetensors", "gguf": "adapter.gguf",
           "pickle_raw": "data.pkl", "pickle_torch": "adapter_model.bin", "npy": "w.npy",
           "npz": "w.npz", "names": "sub/adapter_model.safetensors"}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def results(work: Path) -> dict[str, runner.FuzzResult]:
    done = runner.run_all(seeds.HARNESSES, RUNS, work, timeout_s=SECONDS + 120,
                          workers=min(4, os.cpu_count() or 1), lines=False,
                          max_time_s=SECONDS)
    return {r.name: r for r in done}


@pytest.mark.parametrize("name", seeds.HARNESSES)
def test_harness_runs_clean(results: dict[str, runner.FuzzResult], name: str) -> None:
    r = results[name]
    assert r.exit_code == 0, r.log_tail
    assert r.executions > 0, r.log_tail
    assert not r.crashes, "\n".join(r.crashes)
    assert (r.hangs, r.memory_errors) == (0, 0)
    assert r.edges > 0  # the harness reached instrumented adapterscan code


def _kept(work: Path, name: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((work / "corpus" / name).iterdir())]


def test_scans_of_fuzzed_folders_end_with_a_report(results: dict[str, runner.FuzzResult],
                                                   work: Path, tmp_path: Path) -> None:
    """Whole scans of folders made of fuzzed files: exit 0-3 with a JSON report, and no
    analyzer error (an internal error would be an escape the harnesses missed)."""
    configs = _kept(work, "config")
    for i in range(3):
        folder = tmp_path / f"f{i}"
        for name, rel in AS_FILE.items():
            kept = _kept(work, name)
            data = kept[(i * 7) % len(kept)]
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data[1:] if name == "names" else data)
        cfg = configs[(i * 5) % len(configs)]
        (folder / FILES[cfg[0] % len(FILES)]).parent.mkdir(parents=True, exist_ok=True)
        (folder / FILES[cfg[0] % len(FILES)]).write_bytes(cfg[1:])
        report = scan(folder)
        assert exit_code_for(report) in set(ExitCode)
        json.loads(report.to_json())
        assert not [e for e in report.errors if "internal error" in e.message], report.errors


def test_every_harness_has_seeds_and_a_dictionary(tmp_path: Path) -> None:
    seeds.build(tmp_path, ("webhook",))
    assert any((tmp_path / "seeds" / "webhook").iterdir())
    assert (tmp_path / "webhook.dict").read_text().startswith('"')
    assert set(seeds.HARNESSES) == {p.stem[2:] for p in
                                    Path(seeds.__file__).parent.glob("h_*.py")}
