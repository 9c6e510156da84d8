"""AS508 in small adapters: a module ×60 among two layers is flagged (by shape, or by layer when
shapes differ), the same adapter without it is not, and large adapters keep their comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli_runner import Report, Scan, rule_ids
from tests.factories import adapter_config
from tests.static.factories_weights import key, write

ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")


def _adapter(layers: int, shapes: dict[str, tuple[int, int]], *, seed: int,
             scaled: tuple[int, str] | None = None, r: int = 8,
             factor: float = 60.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for i in range(layers):
        for m, (rows, cols) in shapes.items():
            out[key(i, m, "A")] = rng.normal(0, 0.02, (r, cols)).astype(np.float32)
            b = rng.normal(0, 0.02, (rows, r))
            if scaled == (i, m):
                b *= factor
            out[key(i, m, "B")] = b.astype(np.float32)
    return out


def _scan(cli: Scan, folder: Path, tensors: dict[str, np.ndarray],
          modules: tuple[str, ...]) -> tuple[int, Report]:
    return cli(write(folder, tensors, adapter_config(r=8, lora_alpha=16,
                                                     target_modules=list(modules))))


def _outliers(doc: Report) -> list[dict[str, object]]:
    return [f["evidence"] for f in doc["findings"] if f["rule_id"] == "AS508"]


MHA = {m: (64, 64) for m in ATTN}
GQA = {"q_proj": (64, 64), "k_proj": (16, 64), "v_proj": (16, 64), "o_proj": (64, 64)}
MIXED = {"q_proj": (64, 64), "k_proj": (16, 64), "gate_proj": (96, 64), "down_proj": (64, 96)}


@pytest.mark.parametrize(("shapes", "target", "comparison"), [
    (MHA, (1, "q_proj"), "shape"),
    (GQA, (0, "v_proj"), "shape"),
    (MIXED, (1, "gate_proj"), "layer"),
])
def test_two_layer_adapter_with_one_module_x60_is_flagged(
        tmp_path: Path, cli: Scan, shapes: dict[str, tuple[int, int]], target: tuple[int, str],
        comparison: str) -> None:
    modules = tuple(shapes)
    code, doc = _scan(cli, tmp_path / "neg", _adapter(2, shapes, seed=1), modules)
    assert code == 0 and "AS508" not in rule_ids(doc), _outliers(doc)
    code, doc = _scan(cli, tmp_path / "pos", _adapter(2, shapes, seed=1, scaled=target), modules)
    (hit,) = _outliers(doc)  # one finding, on the scaled module only
    assert hit["module"] == key(*target, "A").removesuffix(".lora_A.weight")
    assert hit["comparison"] == comparison
    stats = hit["statistics"]
    assert isinstance(stats, dict) and stats["log10_fro"]["z"] >= 8  # type: ignore[index]


def test_large_adapter_keeps_the_type_comparison(tmp_path: Path, cli: Scan) -> None:
    _, doc = _scan(cli, tmp_path / "neg", _adapter(32, MHA, seed=3, r=4), ATTN)
    assert "AS508" not in rule_ids(doc)
    _, doc = _scan(cli, tmp_path / "pos", _adapter(32, MHA, seed=3, r=4, scaled=(17, "o_proj")),
                   ATTN)
    (hit,) = _outliers(doc)
    assert hit["comparison"] == "type" and hit["group"] == "o_proj:64x64" and hit["count"] == 32


def test_two_modules_are_too_few_to_compare(tmp_path: Path, cli: Scan) -> None:
    shapes = {"q_proj": (64, 64)}
    _, doc = _scan(cli, tmp_path, _adapter(2, shapes, seed=4, scaled=(0, "q_proj")), ("q_proj",))
    assert "AS508" not in rule_ids(doc)  # documented limit: nothing to compare with


@pytest.mark.parametrize(("factor", "fires"), [(1.0, False), (3.0, False), (8.0, True),
                                               (12.0, True), (60.0, True)])
def test_a_module_many_times_its_siblings_warns(tmp_path: Path, cli: Scan, factor: float,
                                                fires: bool) -> None:
    """AS518: ≥ ×5 (0.7 decades) the group's median size and outside its spread; honest real
    adapters reach +0.44 decades (×2.8), so ×3 stays quiet; AS508 alone stays low."""
    tensors = _adapter(12, MHA, seed=5, r=4, scaled=(6, "v_proj"), factor=factor)
    code, doc = _scan(cli, tmp_path, tensors, ATTN)
    hits = [f for f in doc["findings"] if f["rule_id"] == "AS518"]
    assert bool(hits) is fires, [f["message"] for f in hits]
    if fires:
        (hit,) = hits
        assert hit["evidence"]["module"] == key(6, "v_proj", "A").removesuffix(".lora_A.weight")
        assert hit["evidence"]["times_median"] >= 10 ** 0.7
        assert code == 0 and doc["verdict"]["decision"] == "warn"

