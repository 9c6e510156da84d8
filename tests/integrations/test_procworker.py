"""A worker process whose set-up fails tells its parent why, once, and prints no traceback."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from adapterscan.extras import MissingExtraError
from adapterscan.integrations import batch
from adapterscan.integrations.batch import BatchOptions, run_batch
from adapterscan.integrations.procworker import (
    Handler,
    WorkerLost,
    WorkerProcess,
    WorkerStartError,
    answers,
)
from tests.factories import write_adapter


def failing_factory(setup: Any) -> Handler:
    """Runs in the child (imported there by name): set-up that needs an extra it lacks."""
    raise MissingExtraError("the test's worker", "probe", ("torch",))


def echo_factory(setup: Any) -> Handler:
    return lambda item: f"{setup}:{item}"


def dying_factory(setup: Any) -> Handler:
    """A handler whose process dies on the item `setup` names (as a scan killed for memory)."""
    def handle(item: str) -> str:
        if item == setup:
            os._exit(9)
        return item.upper()

    return handle


def test_worker_answers() -> None:
    worker = WorkerProcess.started(echo_factory, "s")
    try:
        assert worker.run("x", 30) == "s:x"
    finally:
        worker.close()


def test_failed_set_up_is_the_child_s_reason_without_a_traceback(
        capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(WorkerStartError) as err:
        WorkerProcess.started(failing_factory, None)
    assert "failed to start: MissingExtraError: the test's worker needs the probe extra" \
        in str(err.value)
    assert "Traceback" not in capfd.readouterr().err


def test_batch_item_whose_worker_cannot_start_is_an_error_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(batch, "_handler", failing_factory)
    sources = [str(write_adapter(tmp_path / f"a{i}", seed=i)) for i in range(2)]
    results = run_batch(sources, tmp_path / "o.jsonl", engine="local",
                        options=BatchOptions(workers=1))
    assert [r.status for r in results] == ["error", "error"]  # the batch went on, no hang
    assert all(r.exit_code == 2 and "needs the probe extra" in (r.error or "")
               for r in results)
    assert "Traceback" not in capfd.readouterr().err


def test_answers_come_from_several_processes_and_a_dead_one_is_an_answer_not_a_hang() -> None:
    items = ["a", "die", "b", "c"]
    got = dict(answers(dying_factory, "die", items, workers=2, timeout_s=60))
    assert sorted(got) == [0, 1, 2, 3]
    assert [got[i] for i in (0, 2, 3)] == ["A", "B", "C"]  # a fresh process took over
    lost = got[1]
    assert isinstance(lost, WorkerLost) and not lost.timed_out and lost.exitcode == 9


def test_leaving_answers_early_stops_its_processes() -> None:
    it = answers(echo_factory, "s", ["x", "y", "z"], workers=2)
    assert next(it)[1] in ("s:x", "s:y")
    it.close()  # no hang: the processes are killed and the threads that drive them joined
    assert not multiprocessing.active_children()
