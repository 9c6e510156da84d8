"""Calibration bank for the bundled reference model: false alarms and what AS509 sees.

Leave-one-out over the benign calibration adapters (bank from the other 23, score the held-out
one) measures AS509's false-alarm rate on benign adapters it has not seen; the labelled example
adapters (3 benign, 6 harmful/backdoored, none in the bank) scored against the shipped bank show
what the weight statistics alone can and cannot separate. Trains the calibration adapters and the
examples first when they are not cached (about 8 minutes on 2 CPU cores).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adapterscan.emit import Emitter
from adapterscan.rules.loader import load_ruleset
from adapterscan.static.weights.alignment import parse_header
from adapterscan.static.weights.analysis import (
    DEFAULT_BANK,
    WeightOptions,
    adapter_sample,
    analyze_weights,
)
from adapterscan.static.weights.baseline import AdapterSample, build_bank
from adapterscan.training.examples.build import build_examples
from adapterscan.training.examples.calibration import build_calibration_adapters
from benchmarks.common import BenchTable

THRESHOLDS = (4.0, 6.0, 8.0, 12.0)


def _analyze(folder: Path, options: WeightOptions) -> tuple[Emitter, Any]:
    emit = Emitter(load_ruleset())
    headers = {f.name: parse_header(f, f.name) for f in sorted(folder.glob("*.safetensors"))}
    config = json.loads((folder / "adapter_config.json").read_text())
    return emit, analyze_weights(folder, headers, config, emit, options)


def _score(folder: Path, bank: Path) -> tuple[int, float, str]:
    """AS509 findings, the largest |z| and where it is, for one adapter against one bank."""
    emit, result = _analyze(folder, WeightOptions(baseline=bank))
    zs: list[tuple[float, str]] = [(abs(z), f"{m['module'].split('model.layers.')[-1]} {n}")
                                   for m in result["modules"] for n, z in m.get("z", {}).items()]
    zs += [(abs(z), f"adapter {n}") for n, z in result["calibration"]["adapter_z"].items()]
    worst = max(zs, default=(0.0, "-"))
    return sum(f.rule_id == "AS509" for f in emit.findings), worst[0], worst[1]


def _safe_lora(folder: Path) -> tuple[list[float], int]:
    """Safe-LoRA cosines of every module and the AS510 count, against the bundled pair."""
    from adapterscan.reference import reference_dir

    emit, result = _analyze(folder, WeightOptions(
        base_dir=reference_dir(), unaligned_dir=reference_dir(unaligned=True),
        use_default_baseline=False))
    cos = [float(c["cosine"]) for c in result["base"]["safe_lora"] if c["cosine"] is not None]
    return cos, sum(f.rule_id == "AS510" for f in emit.findings)


def _safe_lora_line(label: str, folders: Sequence[Path]) -> str:
    found = [_safe_lora(f) for f in folders]
    cos = sorted(c for cs, _ in found for c in cs)
    fired = sum(n > 0 for _, n in found)
    tau = float(load_ruleset().by_id("AS510").params["tau"])  # type: ignore[arg-type]
    below = sum(c < tau for c in cos)
    return (f"{label}: AS510 on {fired}/{len(found)} adapters ({below}/{len(cos)} modules "
            f"below τ), "
            f"cosine median {statistics.median(cos):.3f}, min {cos[0]:.3f}")


def _write_bank(samples: Sequence[AdapterSample], path: Path) -> Path:
    path.write_text(json.dumps(build_bank(samples)))
    return path


def _rates(scores: Mapping[str, float], names: Sequence[str]) -> str:
    return " / ".join(f"{sum(scores[n] >= t for n in names)}/{len(names)}" for t in THRESHOLDS)


def run() -> BenchTable:
    calib = build_calibration_adapters()
    examples = build_examples()
    emit = Emitter(load_ruleset())
    samples = [adapter_sample(p, emit) for p in calib]
    rows: list[tuple[str, ...]] = []
    loo_max: dict[str, float] = {}
    loo_fired = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, folder in enumerate(calib):
            bank = _write_bank([s for j, s in enumerate(samples) if j != i], Path(tmp) / "b.json")
            hits, z, _ = _score(folder, bank)
            loo_max[folder.name] = z
            loo_fired += hits > 0
    worst_loo = max(loo_max, key=loo_max.__getitem__)
    rows.append(("benign calibration, leave-one-out", str(len(calib)),
                 f"{loo_fired}/{len(calib)}", f"{loo_max[worst_loo]:.1f} ({worst_loo})"))
    ex_max: dict[str, float] = {}
    for ex in examples:
        hits, z, where = _score(ex.path, DEFAULT_BANK)
        ex_max[ex.name] = z
        rows.append((f"example {ex.name} ({ex.expected_class})", "1", str(hits),
                     f"{z:.1f} ({where})"))
    params = load_ruleset().by_id("AS509").params
    benign = [e.name for e in examples if not e.should_reject]
    bad = [e.name for e in examples if e.should_reject]
    notes = (
        f"Max |z| at thresholds {', '.join(f'{t:g}' for t in THRESHOLDS)} (AS509 fires at "
        f"{params['z']}): "
        f"benign calibration adapters, leave-one-out {_rates(loo_max, sorted(loo_max))}; "
        f"benign examples {_rates(ex_max, benign)}; harmful/backdoor/identity examples "
        f"{_rates(ex_max, bad)}.\n\n"
        f"AS509 findings count modules and adapter statistics with |z| ≥ {params['z']} against "
        f"a bank entry from at least {params['min_adapters']} distinct adapters (the rule's "
        "`min_adapters`); max |z| is over every scored statistic. "
        "The shipped bank is `adapterscan/reference/baseline_bank.json`, built by "
        "`adapterscan baseline reference` from the 24 calibration adapters; none of the "
        "labelled examples is in it.\n\n"
        f"Safe-LoRA (AS510, τ = {load_ruleset().by_id('AS510').params['tau']}) against the "
        "bundled aligned/unaligned pair, same adapters: "
        + "; ".join([
            _safe_lora_line("benign calibration", calib),
            _safe_lora_line("benign examples", [e.path for e in examples if not e.should_reject]),
            _safe_lora_line("harmful/backdoor/identity examples",
                            [e.path for e in examples if e.should_reject])]) + ".")
    return BenchTable("Calibration bank (AS509) on the bundled reference model",
                      ("adapters", "n", "with AS509", "max |z| (where)"), tuple(rows), notes)
