"""Bounded tensor reads: F32/F16/BF16 to float64, and refusal of anything inconsistent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from adapterscan.static.formats.tensor_reader import TensorReadError, read_tensor, trusted_header
from tests.static.factories_weights import st_bytes


def _file(tmp_path: Path, tensors: dict[str, np.ndarray], bf16: frozenset[str] = frozenset()
          ) -> Path:
    p = tmp_path / "t.safetensors"
    p.write_bytes(st_bytes(tensors, bf16))
    return p


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_reads_ieee_floats_exactly(tmp_path: Path, dtype: type) -> None:
    x = np.random.default_rng(0).normal(size=(6, 5)).astype(dtype)
    p = _file(tmp_path, {"w": x, "z": np.ones(3, dtype=np.float32)})
    h = trusted_header(p, "t")
    info = h.tensor("w")
    assert info is not None
    t = read_tensor(p, h, info)
    np.testing.assert_array_equal(t.dense(), x.astype(np.float64))
    assert t.nbytes == x.nbytes


def test_reads_bf16_by_widening(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(4, 7)).astype(np.float32)
    p = _file(tmp_path, {"w": x}, bf16=frozenset({"w"}))
    h = trusted_header(p, "t")
    info = h.tensor("w")
    assert info is not None and info.dtype == "BF16"
    got = read_tensor(p, h, info).dense()
    np.testing.assert_allclose(got, x, rtol=2**-8)  # bf16 keeps 8 significant bits
    blocks = np.concatenate([b for _, b in read_tensor(p, h, info).blocks(elems=7)])
    np.testing.assert_array_equal(blocks, got)


def test_rejects_non_float_and_bad_spans(tmp_path: Path) -> None:
    p = _file(tmp_path, {"i": np.arange(6, dtype=np.int32), "w": np.ones((2, 2), np.float32)})
    h = trusted_header(p, "t")
    i_info, w_info = h.tensor("i"), h.tensor("w")
    assert i_info is not None and w_info is not None
    with pytest.raises(TensorReadError, match="not a float"):
        read_tensor(p, h, i_info)
    with pytest.raises(TensorReadError, match="span"):
        read_tensor(p, h, replace(w_info, end=w_info.end - 4))
    with pytest.raises(TensorReadError, match="past the end"):
        read_tensor(p, replace(h, file_size=h.file_size - 8), w_info)
    p.write_bytes(p.read_bytes()[:-8])  # the file shrank after the header was validated
    with pytest.raises(TensorReadError, match="short read"):
        read_tensor(p, h, w_info)
