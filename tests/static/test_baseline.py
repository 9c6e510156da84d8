"""Calibration bank: build from trusted adapters, reload, z-score, flag outliers (AS509)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app
from adapterscan.static.baseline import (
    AdapterSample,
    BankError,
    build_bank,
    load_bank,
    robust,
    zscores,
)
from adapterscan.static.weights import WeightOptions, adapter_sample
from tests.static.factories_weights import emitter, lora, rule_ids, scan, write


def test_robust_location_scale_and_z() -> None:
    rb = robust([1.0, 2.0, 3.0, 4.0, 100.0])
    assert rb is not None and (rb.median, rb.mad, rb.count) == (3.0, 1.0, 5)
    assert rb.z(3.0) == 0.0
    assert rb.z(3.0 + 1.4826) == pytest.approx(1.0)


def test_bank_roundtrip(tmp_path: Path) -> None:
    samples = [AdapterSample(source=f"s{i}", modules=[("q_proj:8x8", {"log10_fro": -1.0 + i,
                                                                         "kurtosis": 3.0})],
                             adapter={"log10_total_fro": float(i)}) for i in range(3)]
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(build_bank(samples)))
    bank = load_bank(path)
    ref = bank.module("q_proj:8x8")
    assert ref is not None and bank.n_adapters == 3
    z = zscores(ref, {"log10_fro": 0.0, "kurtosis": 3.0, "stable_rank": 2.0},
                ["log10_fro", "kurtosis", "stable_rank"])
    assert z == {"log10_fro": 0.0, "kurtosis": 0.0}  # no bank entry, no z-score
    assert bank.adapter["log10_total_fro"].median == 1.0


@pytest.mark.parametrize("text", ["{", "[]", '{"format": "other"}',
                                  '{"format": "adapterscan-baseline/1", "modules": {"q": '
                                  '{"kurtosis": {"median": 1, "mad": -1, "count": 2}}}, '
                                  '"adapter": {}}'])
def test_bad_banks_are_refused(tmp_path: Path, text: str) -> None:
    p = tmp_path / "bank.json"
    p.write_text(text)
    with pytest.raises(BankError):
        load_bank(p)


def _benign(tmp_path: Path, n: int = 4) -> list[Path]:
    return [write(tmp_path / f"benign{i}", lora(layers=4, seed=10 + i)) for i in range(n)]


def test_cli_build_and_scan_with_bank(tmp_path: Path) -> None:
    folders = _benign(tmp_path)
    out = tmp_path / "bank.json"
    res = CliRunner().invoke(app, ["baseline", "build", *map(str, folders), "--out", str(out)])
    assert res.exit_code == 0, res.output
    bank = json.loads(out.read_text())
    assert bank["n_adapters"] == 4 and bank["modules"]["q_proj:32x32"]["log10_fro"]["count"] == 16

    opts = WeightOptions(baseline=out)
    emit, result = scan(write(tmp_path / "benign_new", lora(layers=4, seed=99)), opts)
    assert "AS509" not in rule_ids(emit)
    cal = result["calibration"]
    assert cal["modules_scored"] == 4 and cal["modules_unmatched"] == 0
    assert "log10_fro" in result["modules"][0]["z"] and "layer_top_share" in cal["adapter_z"]

    emit, result = scan(write(tmp_path / "loud", lora(layers=4, seed=98, gains={1: 50.0})), opts)
    hits = [f for f in emit.findings if f.rule_id == "AS509"]
    assert hits and hits[0].evidence["module"] is not None
    assert abs(float(hits[0].evidence["z"])) >= 6.0  # type: ignore[arg-type]


def test_bank_for_other_shapes_is_not_applied(tmp_path: Path) -> None:
    sample = adapter_sample(_benign(tmp_path, 1)[0], emitter())
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(build_bank([sample])))
    emit, result = scan(write(tmp_path / "wide", lora(layers=4, hidden=48)),
                        WeightOptions(baseline=path))
    assert result["calibration"]["modules_scored"] == 0
    assert "AS509" not in rule_ids(emit)


def test_unreadable_bank_is_a_stage_error(tmp_path: Path) -> None:
    p = tmp_path / "bank.json"
    p.write_text("not json")
    emit, _ = scan(write(tmp_path / "a", lora()), WeightOptions(baseline=p))
    assert emit.errors and "calibration bank" in emit.errors[0].message
