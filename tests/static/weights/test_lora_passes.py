"""lora_pair reads each factor's blocks in three passes, not four (the larger factor's energies
come from its Gram pass): its statistics equal the pass-by-pass computation bit for bit, for
F16 factors in either order, and a non-finite A is still named before a non-finite B."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapterscan.static.formats.model import AdapterModule
from adapterscan.static.formats.readers import read_adapters
from adapterscan.static.weights.algorithms import NonFinite, lora_factors, lora_pair
from adapterscan.static.weights.concentration import (
    axis_concentration,
    sampled_moments,
    vector_energies,
)
from adapterscan.static.weights.lowrank import (
    TensorVectors,
    combine,
    plan_kurtosis,
    summarize_vectors,
)
from tests.static.factories_formats import write_st
from tests.static.factories_weights import headers

PREFIX = "base_model.model.model.layers.0.self_attn.q_proj"


def _module(tmp_path: Path, out: int, inp: int, r: int, dtype: type = np.float16,
            seed: int = 0) -> tuple[AdapterModule, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    t: dict[str, np.ndarray] = {
        f"{PREFIX}.lora_A.weight": rng.normal(0, 0.02, (r, inp)).astype(dtype),
        f"{PREFIX}.lora_B.weight": rng.normal(0, 0.02, (out, r)).astype(dtype)}
    t[f"{PREFIX}.lora_B.weight"][7] *= 40  # one loud row
    write_st(tmp_path, "adapter_model.safetensors", t)
    return read_adapters(tmp_path, headers(tmp_path), {}, {}).modules[0], t


# (out, in, r): A smaller than B, B smaller than A (a k/v projection), both sampled-grid.
@pytest.mark.parametrize(("out", "inp", "r"), [(3000, 700, 16), (600, 5000, 16)])
def test_three_passes_equal_four(tmp_path: Path, out: int, inp: int, r: int) -> None:
    m, _ = _module(tmp_path, out, inp, r)
    pair, zero = lora_pair(m, 0.5)
    b, a = lora_factors(m)
    plan = plan_kurtosis(out, inp, r)
    assert plan.method == "sampled-grid" and zero is None
    bv, av = TensorVectors(b, True), TensorVectors(a, False)
    sb, sa = summarize_vectors(bv, plan), summarize_vectors(av, plan)
    want = combine(sb, sa, 0.5, plan)
    row_e, col_e = vector_energies(bv, sa.gram), vector_energies(av, sb.gram)
    assert sa.sample is not None
    mom = sampled_moments(bv, sa.sample, row_e, inp)
    assert pair.spectrum == want.spectrum
    assert pair.rows == axis_concentration(row_e)
    assert pair.cols == axis_concentration(col_e)
    assert (pair.kurtosis, pair.kurtosis_method) == (mom.kurtosis, "sampled-energy")
    np.testing.assert_array_equal(pair.gram_a, sa.gram)
    np.testing.assert_array_equal(pair.gram_b, sb.gram)


def test_zero_b_keeps_the_grid_kurtosis(tmp_path: Path) -> None:
    """No energy to draw rows by: the uniform grid's estimate, as before."""
    m, t = _module(tmp_path, 3000, 700, 16)
    t[f"{PREFIX}.lora_B.weight"][:] = 0
    write_st(tmp_path, "adapter_model.safetensors", t)
    m = read_adapters(tmp_path, headers(tmp_path), {}, {}).modules[0]
    pair, zero = lora_pair(m, 1.0)
    assert zero is not None and pair.kurtosis_method == "sampled-grid"


@pytest.mark.parametrize(("out", "inp"), [(3000, 700), (600, 5000)])
def test_nonfinite_a_is_named_first(tmp_path: Path, out: int, inp: int) -> None:
    _, t = _module(tmp_path, out, inp, 8)
    t[f"{PREFIX}.lora_A.weight"][2, 3] = np.inf
    t[f"{PREFIX}.lora_B.weight"][5, 1] = np.nan
    write_st(tmp_path, "adapter_model.safetensors", t)
    m = read_adapters(tmp_path, headers(tmp_path), {}, {}).modules[0]
    with pytest.raises(NonFinite) as exc:
        lora_pair(m, 1.0)
    assert exc.value.ref.info.name == f"{PREFIX}.lora_A.weight"
