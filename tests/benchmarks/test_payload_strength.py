"""The strength axis of bench_payloads: plant_at hits the strength it is asked for, measured
here independently on the dense ΔW read back from the planted file (and by random unit inputs
for what the axis claims), with the norm kept where the payload says so."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from benchmarks.payloads import StFile, Unreachable, live_pairs, plant_at, weights_file
from tests.factories import adapter_config
from tests.static.factories_weights import key, write

LAYERS, HIDDEN, R, ALPHA = 6, 96, 4, 16  # scale s = alpha / r = 4
MODULES = ("q_proj", "v_proj")


def _adapter(tmp: Path) -> Path:
    rng = np.random.default_rng(7)
    t = {}
    for i in range(LAYERS):
        for m in MODULES:
            t[key(i, m, "A")] = rng.normal(0, 0.05, (R, HIDDEN)).astype(np.float32)
            t[key(i, m, "B")] = rng.normal(0, 0.02 * (1 + i / 4), (HIDDEN, R)).astype(np.float32)
    return write(tmp, t, adapter_config(r=R, lora_alpha=ALPHA, target_modules=list(MODULES)))


def _dense(folder: Path) -> dict[str, np.ndarray]:
    st = StFile.read(weights_file(folder))  # type: ignore[arg-type]
    return {p.a: (ALPHA / R) * st.get(p.b) @ st.get(p.a) for p in live_pairs(st)}


def _typical_row(dense: dict[str, np.ndarray]) -> float:
    return statistics.median(float(np.linalg.norm(d) / np.sqrt(d.size)) for d in dense.values())


@pytest.mark.parametrize(("payload", "target"), [("scale", 1.0), ("scale", 8.0),
                                                 ("rows", 1.0), ("rows", 2.0)])
def test_planted_strength_is_the_asked_one(tmp_path: Path, payload: str, target: float) -> None:
    src = _adapter(tmp_path / "src")
    got = plant_at(src, tmp_path / "dst", payload, target, seed=3)
    before, after = _dense(src), _dense(tmp_path / "dst")
    d = after[got.module] - before[got.module]
    changed = [name for name in before if not np.allclose(before[name], after[name])]
    assert changed == [got.module]  # one module, the mid-depth one
    if payload == "rows":  # the 4 target rows are the ones the payload wrote into
        rows = np.argsort(-np.linalg.norm(d, axis=1))[:4]
        assert np.linalg.norm(after[got.module]) == pytest.approx(
            np.linalg.norm(before[got.module]), rel=1e-5)  # ‖ΔW‖_F kept
        assert 0 < got.parameter < 1
    else:
        rows = np.arange(d.shape[0])
        assert got.parameter == pytest.approx(
            1 + target * _typical_row(before) / (np.linalg.norm(before[got.module])
                                                 / np.sqrt(before[got.module].size)), rel=1e-6)
    per_row = np.linalg.norm(d[rows]) / np.sqrt(rows.size * d.shape[1])
    assert per_row / _typical_row(before) == pytest.approx(target, rel=1e-3)
    assert got.strength == pytest.approx(target, rel=1e-6)
    # What the axis claims: E‖D_R x‖² = ‖D_R‖²_F / in for unit inputs x.
    x = np.random.default_rng(0).normal(size=(d.shape[1], 20000))
    x /= np.linalg.norm(x, axis=0)
    mc = float(np.mean(np.sum((d[rows] @ x) ** 2, axis=0)))
    assert mc == pytest.approx(np.linalg.norm(d[rows]) ** 2 / d.shape[1], rel=0.05)


def test_a_strength_beyond_the_whole_direction_is_out_of_reach(tmp_path: Path) -> None:
    src = _adapter(tmp_path / "src")
    with pytest.raises(Unreachable):
        plant_at(src, tmp_path / "dst", "rows", 1e6)
    assert not (tmp_path / "dst").exists()
