"""Calibration bank: build from trusted adapters, reload, z-score, flag outliers (AS509)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapterscan.cli.app import app
from adapterscan.static.weights.analysis import WeightOptions, adapter_sample
from adapterscan.static.weights.baseline import (
    AdapterSample,
    BankError,
    build_bank,
    load_bank,
    robust,
    zscores,
)
from tests.static.factories_weights import emitter, lora, rule_ids, scan, write


def test_robust_location_scale_and_z() -> None:
    rb = robust([1.0, 2.0, 3.0, 4.0, 100.0])
    assert rb is not None and (rb.median, rb.mad, rb.count, rb.adapters) == (3.0, 1.0, 5, 5)

    assert rb.z(3.0) == 0.0
    assert rb.z(3.0 + 1.4826) == pytest.approx(1.0)
    rb2 = robust([1.0, 2.0, float("nan"), 4.0], sources=[0, 0, 1, 2])
    assert rb2 is not None and (rb2.count, rb2.adapters) == (3, 2)  # the NaN's adapter drops out


def test_bank_roundtrip(tmp_path: Path) -> None:
    samples = [AdapterSample(source=f"s{i}", modules=[("q_proj:8x8", None, {"log10_fro": -1.0 + i,
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
                                  '{"format": "adapterscan-baseline/2", "modules": {"q": '
                                  '{"kurtosis": {"median": 1, "mad": -1, "count": 2, '
                                  '"adapters": 1}}}, "adapter": {}}',
                                  '{"format": "adapterscan-baseline/2", "modules": {"q": '
                                  '{"kurtosis": {"median": 1, "mad": 1, "count": 2, '
                                  '"adapters": 3}}}, "adapter": {}}'])
def test_bad_banks_are_refused(tmp_path: Path, text: str) -> None:
    p = tmp_path / "bank.json"
    p.write_text(text)
    with pytest.raises(BankError):
        load_bank(p)


def test_older_bank_format_says_to_rebuild(tmp_path: Path) -> None:
    p = tmp_path / "bank.json"
    p.write_text('{"format": "adapterscan-baseline/1", "modules": {}, "adapter": {}}')
    with pytest.raises(BankError, match="rebuild it"):
        load_bank(p)


def _benign(tmp_path: Path, n: int = 8) -> list[Path]:
    return [write(tmp_path / f"benign{i}", lora(layers=4, seed=10 + i)) for i in range(n)]


def test_cli_build_and_scan_with_bank(tmp_path: Path) -> None:
    folders = _benign(tmp_path)
    out = tmp_path / "bank.json"
    res = CliRunner().invoke(app, ["baseline", "build", *map(str, folders), "--out", str(out)])
    assert res.exit_code == 0, res.output
    bank = json.loads(out.read_text())
    entry = bank["modules"]["q_proj:32x32"]["log10_fro"]
    assert bank["n_adapters"] == 8 and (entry["count"], entry["adapters"]) == (32, 8)

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


def _rank_bank(tmp_path: Path, n_r8: int, n_r4: int) -> Path:
    def sample(i: int, rank: int, fro: float) -> AdapterSample:
        key = "q_proj:8x8"
        stats = {"log10_fro": fro}
        return AdapterSample(source=f"s{i}", modules=[(key, rank, stats)],
                             adapter={})
    samples = [sample(i, 8, 1.0 + 0.01 * i) for i in range(n_r8)]
    samples += [sample(100 + i, 4, -1.0 + 0.01 * i) for i in range(n_r4)]
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(build_bank(samples, {"built_by": "test"})))
    return path


def test_bank_prefers_rank_specific_entries_with_enough_values(tmp_path: Path) -> None:
    bank = load_bank(_rank_bank(tmp_path, n_r8=8, n_r4=3))
    assert bank.meta == {"built_by": "test"}
    found = bank.lookup("q_proj:8x8", 8, min_adapters=8)
    assert found is not None and found[0] == "q_proj:8x8@r8"
    assert found[1]["log10_fro"].median == pytest.approx(1.035)
    # Three rank-4 values are too few: the shape entry (all 11 values) is used instead.
    found = bank.lookup("q_proj:8x8", 4, min_adapters=8)
    assert found is not None and found[0] == "q_proj:8x8" and found[1]["log10_fro"].count == 11
    assert bank.lookup("q_proj:8x8", 16, min_adapters=8) is not None
    assert bank.lookup("k_proj:8x8", 8, min_adapters=8) is None


def test_too_few_bank_values_never_fire(tmp_path: Path) -> None:
    folders = _benign(tmp_path, n=1)  # 4 values of 1 adapter: below AS509's min_adapters (8)
    out = tmp_path / "bank.json"
    res = CliRunner().invoke(app, ["baseline", "build", *map(str, folders), "--out", str(out)])
    assert res.exit_code == 0, res.output
    emit, result = scan(write(tmp_path / "loud", lora(layers=4, seed=98, gains={1: 50.0})),
                        WeightOptions(baseline=out))
    assert "AS509" not in rule_ids(emit)
    assert abs(result["modules"][1]["z"]["log10_fro"]) >= 6.0  # the z-score is still reported
