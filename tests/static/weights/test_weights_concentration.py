"""Row/column concentration of ΔW from the Grams (exact against dense ΔW), the kurtosis of large
modules on rows drawn by energy, and AS517 on a norm-kept 4-row concentration payload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapterscan.static.formats.tensor_reader import RawTensor
from adapterscan.static.weights.concentration import (
    axis_concentration,
    importance_rows,
    sampled_moments,
    vector_energies,
)
from adapterscan.static.weights.lowrank import (
    SAMPLE_SEED,
    SAMPLE_SIDE,
    TOP_K,
    TensorVectors,
    plan_kurtosis,
)
from tests.factories import adapter_config
from tests.static.factories_weights import key, rule_ids, scan, write


def _raw(x: np.ndarray) -> RawTensor:
    x = np.ascontiguousarray(x, dtype=np.float64)
    return RawTensor("t", "F64", x.shape, x)


@pytest.mark.parametrize(("out", "inp", "r"), [(40, 30, 3), (300, 7000, 8), (5000, 64, 16)])
def test_gram_energies_equal_dense_rows_and_columns(out: int, inp: int, r: int) -> None:
    rng = np.random.default_rng(out)
    b, a = rng.normal(size=(out, r)), rng.normal(size=(r, inp))
    b[3] *= 50.0  # one loud row, so the shares are not all alike
    s = 1.7
    dense = s * b @ a
    rows = vector_energies(TensorVectors(_raw(b), True), a @ a.T) * s * s
    cols = vector_energies(TensorVectors(_raw(a), False), b.T @ b) * s * s
    np.testing.assert_allclose(rows, (dense ** 2).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(cols, (dense ** 2).sum(axis=0), rtol=1e-12)
    conc = axis_concentration(rows)
    assert conc is not None
    e = np.sort((dense ** 2).sum(axis=1))[::-1]
    for k, share in zip(TOP_K, conc.top_share, strict=True):
        assert share == pytest.approx(e[:k].sum() / e.sum(), rel=1e-12)
    norms = np.sqrt(e)
    n = e.size
    hoyer = (np.sqrt(n) - norms.sum() / np.sqrt(e.sum())) / (np.sqrt(n) - 1)
    asc = e[::-1]
    gini = (2 * np.arange(1, n + 1) - n - 1) @ asc / (n * asc.sum())
    assert conc.hoyer == pytest.approx(hoyer, rel=1e-12)
    assert conc.gini == pytest.approx(gini, rel=1e-12)


def test_uniform_and_single_row_extremes() -> None:
    flat = axis_concentration(np.ones(64))
    one = axis_concentration(np.eye(1, 64).ravel())
    assert flat is not None and one is not None
    assert flat.hoyer == pytest.approx(0.0, abs=1e-12)
    assert flat.gini == pytest.approx(0.0, abs=1e-12)
    assert one.hoyer == pytest.approx(1.0) and one.top_share[0] == pytest.approx(1.0)
    assert axis_concentration(np.zeros(8)) is None


def test_kurtosis_sees_four_spiky_rows_of_8192() -> None:
    """A uniform 256-row grid meets 4 rows of 8192 0.125 times on average; rows drawn by their
    energy meet them and keep the estimate near the exact kurtosis."""
    out, inp, r = 8192, 512, 16
    rng = np.random.default_rng(0)
    b, a = rng.normal(0, 0.01, (out, r)), rng.normal(size=(r, inp))
    b[[100, 2000, 4000, 8000]] = rng.normal(0, 3.0, (4, r))
    plan = plan_kurtosis(out, inp, r)
    assert plan.method == "sampled-grid" and plan.cols is not None
    dense = b @ a
    x = dense.ravel() - dense.mean()
    exact = float((x ** 4).mean() / (x ** 2).mean() ** 2)
    grid = dense[np.ix_(plan.rows, plan.cols)].ravel()  # type: ignore[arg-type]
    grid = grid - grid.mean()
    uniform = float((grid ** 4).mean() / (grid ** 2).mean() ** 2)
    energies = vector_energies(TensorVectors(_raw(b), True), a @ a.T)
    est = sampled_moments(TensorVectors(_raw(b), True), a[:, plan.cols].T, energies, inp).kurtosis
    assert exact > 100 and uniform < 10  # the grid misses the spikes
    assert est == pytest.approx(exact, rel=0.3)


LAYERS, HIDDEN, R = 8, 256, 4
MODULES = ("q_proj", "v_proj")


def _adapter(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for i in range(LAYERS):
        for m in MODULES:
            out[key(i, m, "A")] = rng.normal(0, 0.02, (R, HIDDEN)).astype(np.float32)
            out[key(i, m, "B")] = rng.normal(0, 0.02, (HIDDEN, R)).astype(np.float32)
    return out


def _concentrate(t: dict[str, np.ndarray], layer: int, module: str) -> None:
    """Move the strongest LoRA direction of one module into 4 output rows, ‖ΔW‖_F kept."""
    a = t[key(layer, module, "A")].astype(np.float64)
    b = t[key(layer, module, "B")].astype(np.float64)
    fro = np.linalg.norm(b @ a)
    j = int(np.argmax(np.linalg.norm(b, axis=0) * np.linalg.norm(a, axis=1)))
    col = np.zeros(HIDDEN)
    col[[5, 77, 150, 201]] = np.linalg.norm(b[:, j]) / 2.0 * np.array([1, -1, 1, 1])
    b[:, j] = col
    b *= fro / np.linalg.norm(b @ a)
    assert np.linalg.norm(b @ a) == pytest.approx(fro)
    t[key(layer, module, "B")] = b.astype(np.float32)


def _config() -> dict[str, object]:
    return adapter_config(r=R, lora_alpha=2 * R, target_modules=list(MODULES))


def test_as517_fires_on_a_norm_kept_four_row_payload_only(tmp_path: Path) -> None:
    benign = _adapter(1)
    emit, _ = scan(write(tmp_path / "benign", benign, _config()))
    assert "AS517" not in rule_ids(emit)
    planted = dict(benign)
    _concentrate(planted, 4, "q_proj")
    emit, result = scan(write(tmp_path / "planted", planted, _config()))
    hits = [f for f in emit.findings if f.rule_id == "AS517"]
    assert len(hits) == 1, [f.message for f in hits]
    ev = hits[0].evidence
    assert ev["module"] == key(4, "q_proj", "A").removesuffix(".lora_A.weight")
    assert ev["axis"] == "rows" and ev["z"] >= 6 and ev["ratio"] >= 4
    assert "AS508" not in rule_ids(emit)  # the norm is kept: strength-based rules stay quiet
    rec = next(m for m in result["modules"] if m["module"] == ev["module"])
    assert rec["row_concentration"]["top4"] == pytest.approx(ev["share"])


@pytest.mark.parametrize("seed", range(6))
def test_importance_rows_draw_as_generator_choice(seed: int) -> None:
    """importance_rows replays Generator.choice(p=...) of a fresh default_rng(SAMPLE_SEED)."""
    rng = np.random.default_rng(seed)
    energies = rng.random(500 + 1000 * seed) ** (1 + seed)
    energies[: seed * 3] = 0.0
    m = energies.size
    p = 0.5 * energies / energies.sum() + 0.5 / m
    draws = np.random.default_rng(SAMPLE_SEED).choice(m, size=SAMPLE_SIDE, replace=True,
                                                      p=p / p.sum())
    want, counts = np.unique(draws, return_counts=True)
    rows, weights = importance_rows(energies)
    np.testing.assert_array_equal(rows, want)
    np.testing.assert_array_equal(weights, counts / (SAMPLE_SIDE * p[want]))
