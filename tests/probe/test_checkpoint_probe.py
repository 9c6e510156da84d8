"""The probe on a full checkpoint: the checkpoint itself is the merged model, measured against
the bundled reference with the same power check and drift rules as an adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapterscan.examples import shipped_dir
from adapterscan.pipeline import ScanOptions, scan
from adapterscan.report import ScanReport
from tests.static.delta.factories import merge_adapter, reference_weights, write_checkpoint

pytest.importorskip("torch")
pytest.importorskip("peft")

HARMFUL = "harmful-compliance-r8"


def _scan(source: Path) -> ScanReport:
    from adapterscan.probe.options import ProbeOptions

    return scan(source, options=ScanOptions(base="reference", probe=ProbeOptions(
        max_prompts=32, max_new_tokens=12, threads=1)))


def _probe(report: ScanReport) -> dict[str, object]:
    probe = report.results["probe"]
    assert isinstance(probe, dict), report.errors
    return probe


def _ids(report: ScanReport) -> set[str]:
    return {f.rule_id for f in report.findings}


def test_merged_harmful_checkpoint_fails_like_its_adapter(tmp_path: Path) -> None:
    adapter = shipped_dir() / HARMFUL
    merged = _scan(write_checkpoint(tmp_path / "ck", merge_adapter(adapter)))
    plain = _scan(adapter)
    assert "AS601" in _ids(plain) and "AS601" in _ids(merged)
    assert "AS608" not in _ids(merged) and not merged.errors
    assert merged.verdict.decision is plain.verdict.decision
    probe = _probe(merged)
    assert "load_checkpoint" in probe["timings"]  # type: ignore[operator]
    assert "apply_merge" not in probe["timings"]  # type: ignore[operator]
    assert probe["triggers"]["searched"] is False  # type: ignore[index]


def test_checkpoint_equal_to_the_base_shows_no_drift(tmp_path: Path) -> None:
    report = _scan(write_checkpoint(tmp_path / "same", reference_weights()))
    assert not {r for r in _ids(report) if r.startswith("AS60")}
    assert report.complete and not report.errors
    assert _probe(report)["power"]["problems"] == []  # type: ignore[index]


def test_checkpoint_of_another_base_is_not_probed(tmp_path: Path) -> None:
    """The delta stage refuses the pair (a stage error); the probe adds nothing to measure."""
    other = write_checkpoint(tmp_path / "other", reference_weights(),
                             config=lambda c: c.update(hidden_size=512))
    report = _scan(other)
    assert not report.complete
    assert report.results["probe"] is None
    assert not [e for e in report.errors if e.stage == "probe"]
