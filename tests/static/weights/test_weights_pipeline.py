"""Weight statistics reach the JSON report of a full scan, with a calibration bank when given."""

from __future__ import annotations

import json
from pathlib import Path

from adapterscan.pipeline import ScanOptions, scan
from adapterscan.static.interface import StaticOptions
from adapterscan.static.weights.analysis import WeightOptions, adapter_sample
from adapterscan.static.weights.baseline import build_bank
from tests.static.factories_weights import emitter, lora, write


def test_scan_report_carries_weight_statistics(tmp_path: Path) -> None:
    benign = [write(tmp_path / f"b{i}", lora(layers=4, seed=20 + i)) for i in range(8)]
    bank = tmp_path / "bank.json"
    bank.write_text(json.dumps(build_bank([adapter_sample(f, emitter()) for f in benign])))
    suspect = write(tmp_path / "suspect", lora(layers=4, seed=30, gains={2: 40.0}))
    opts = ScanOptions(static=StaticOptions(weights=WeightOptions(baseline=bank)))
    report = json.loads(scan(suspect, options=opts).to_json())
    weights = report["results"]["weights"]
    assert len(weights["modules"]) == 4
    assert weights["calibration"]["modules_scored"] == 4
    assert "z" in weights["modules"][2]
    assert {"AS506", "AS509"} <= {f["rule_id"] for f in report["findings"]}
