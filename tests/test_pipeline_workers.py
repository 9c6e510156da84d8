"""The scan's worker threads (hashes, data scans, module statistics) never decide what a report
says: findings come out in the same order on every run, every file is hashed, and a worker that
fails makes the scan incomplete, never clean."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import adapterscan.static.interface as static_interface
from adapterscan.pipeline import scan
from adapterscan.rules.loader import load_ruleset
from adapterscan.static.weights import analysis
from tests.factories import adapter_config
from tests.static.factories_weights import key, lora, write


def _adapter(tmp_path: Path) -> Path:
    t = lora(layers=12, modules=("q_proj", "v_proj"))
    t[key(3, "q_proj", "B")][2, 1] = np.nan  # AS230 from the data scan, AS501 from the module
    t[key(7, "v_proj", "B")] *= 100.0  # AS508
    blob = bytearray(t[key(9, "v_proj", "A")].tobytes())
    blob[40:48] = b"PK\x03\x04\x14\x00\x00\x00"  # AS233 inside a factor
    t[key(9, "v_proj", "A")] = np.frombuffer(bytes(blob), np.float32).reshape(4, 32).copy()
    return write(tmp_path, t, adapter_config(target_modules=["q_proj", "v_proj"]))


def test_reports_are_identical_run_after_run(tmp_path: Path) -> None:
    folder = _adapter(tmp_path)
    rules = load_ruleset()
    runs = [scan(folder, ruleset=rules) for _ in range(4)]
    seen = [[(f.rule_id, f.message, f.location.tensor) for f in r.findings] for r in runs]
    assert all(s == seen[0] for s in seen)
    assert {"AS230", "AS233", "AS501", "AS508"} <= {f[0] for f in seen[0]}
    files = {rec.path: rec.sha256 for rec in runs[0].subject.files}
    for name, digest in files.items():
        assert digest == hashlib.sha256((folder / name).read_bytes()).hexdigest()


def test_a_failed_data_scan_makes_the_scan_incomplete(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(static_interface.safetensors_data, "measure_tensor_data", broken)
    report = scan(write(tmp_path, lora(), adapter_config()), ruleset=load_ruleset())
    assert not report.complete
    assert any(e.stage == "safetensors" and "boom" in e.message for e in report.errors)


def test_a_failed_module_on_a_worker_is_not_clean(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(*_: object) -> object:
        raise OSError("gone")

    monkeypatch.setattr(analysis, "compute_pair", unreadable)
    report = scan(write(tmp_path, lora(), adapter_config()), ruleset=load_ruleset())
    assert not report.complete
    assert any("cannot read its factors: gone" in s.reason for s in report.skipped)
