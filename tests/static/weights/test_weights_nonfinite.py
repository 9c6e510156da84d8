"""Integrity faults fail the scan by default (exit 1): NaN/Inf in a LoRA factor (AS501 and
AS230), in a tensor that is not a factor (AS230), and finite factors whose product overflows
the dtype a merge writes (AS501). Each has a clean twin that passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli_runner import Report, Scan, rule_ids
from tests.factories import adapter_config
from tests.static.factories_weights import key, lora, write

HEAD = "base_model.model.score.modules_to_save.default.weight"  # a classifier head


def _scan(cli: Scan, folder: Path, tensors: dict[str, np.ndarray], **cfg: object
          ) -> tuple[int, Report]:
    config = adapter_config(**{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], **cfg})
    return cli(write(folder, tensors, config))


def _severity(doc: Report, rule: str) -> str:
    hits = [f for f in doc["findings"] if f["rule_id"] == rule]
    assert hits, sorted(rule_ids(doc))
    return str(hits[0]["severity"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nonfinite_lora_factor_fails(tmp_path: Path, cli: Scan, bad: float,
                                     dtype: type) -> None:
    clean = {k: v.astype(dtype) for k, v in lora().items()}
    code, doc = _scan(cli, tmp_path / "neg", clean)
    assert code == 0 and doc["verdict"]["decision"] == "pass", doc["verdict"]
    poisoned = {k: v.copy() for k, v in clean.items()}
    poisoned[key(2, "q_proj", "B")][5, 1] = bad
    code, doc = _scan(cli, tmp_path / "pos", poisoned)
    assert code == 1 and doc["verdict"]["decision"] == "fail"
    assert _severity(doc, "AS501") == "high" and _severity(doc, "AS230") == "high"


def test_nonfinite_modules_to_save_copy_fails(tmp_path: Path, cli: Scan) -> None:
    t = lora()
    t[HEAD] = np.random.default_rng(0).normal(0, 0.02, (2, 32)).astype(np.float32)
    code, doc = _scan(cli, tmp_path / "neg", t, modules_to_save=["score"], task_type="SEQ_CLS")
    assert code == 0 and "AS230" not in rule_ids(doc), (doc["verdict"], doc["skipped"])
    t[HEAD][1, 3] = np.inf  # not a LoRA factor: no module statistic reads it
    code, doc = _scan(cli, tmp_path / "pos", t, modules_to_save=["score"], task_type="SEQ_CLS")
    assert code == 1 and _severity(doc, "AS230") == "high"


def test_product_that_overflows_the_dtype_fails(tmp_path: Path, cli: Scan) -> None:
    t = {k: v.astype(np.float16) for k, v in lora().items()}
    big = {k: v.copy() for k, v in t.items()}
    big[key(1, "q_proj", "A")] *= np.float16(4000.0)  # entries ~200: finite in fp16
    big[key(1, "q_proj", "B")] *= np.float16(4000.0)  # ΔW entries ~1.6e5 (RMS): past 65504
    code, doc = _scan(cli, tmp_path / "neg", t)
    assert code == 0
    code, doc = _scan(cli, tmp_path / "pos", big)
    assert code == 1 and "AS230" not in rule_ids(doc)  # every stored value is finite
    (hit,) = [f for f in doc["findings"] if f["rule_id"] == "AS501"]
    assert hit["evidence"]["role"] == "overflow" and hit["evidence"]["dtype"] == "F16"
