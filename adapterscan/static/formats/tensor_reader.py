"""Bounded reads of one tensor from a validated safetensors header.

The reader maps exactly the bytes [data_start + begin, data_start + end) of the file (mapped.py:
the page cache's pages, no copy) and keeps them in their stored dtype; conversion happens in
blocks, so the working memory is one block, not the tensor. Statistics use float32 blocks
(`to_float`, docs/weights.md for the error bound): f16 is widened with integer operations
(numpy's own f16 cast runs ~7x slower here), bf16 by a shift; F64 stays float64.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from adapterscan.mapped import SpanError, map_span
from adapterscan.static.layout import DataLayout, SafetensorsHeader, TensorInfo

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
# A block in the dtype statistics are computed in: float32, or float64 for F64 tensors.
Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]

# Stored dtype -> (numpy dtype of the raw bytes, bytes per element).
_RAW: dict[str, tuple[type[np.generic], int]] = {
    "F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2),
    "BF16": (np.uint16, 2),
}
# GGUF Q8_0 (llama.cpp `--outtype q8_0` adapters): blocks of an f16 scale and 32 int8 values.
Q8_0_BLOCK, Q8_0_BYTES = 32, 34
FLOAT_DTYPES = frozenset({*_RAW, "Q8_0"})
# Elements converted at a time: a 256 KiB float32 block (in L2 with room to spare; two modules
# are analysed at once). Bigger blocks bought no BLAS speed here (syrk at r = 64: the same
# within 4% from 1,024 to 4,096 vectors per block).
BLOCK_ELEMS = 1 << 16
_F16_MASK = np.int32(-0x70002000)  # 0x8fffe000: sign, then exponent and mantissa bits
_F16_TO_F32 = np.float32(2.0 ** 112)  # re-biases the exponent (15 -> 127), subnormals too


def has_nonfinite_16(bits: npt.NDArray[np.int16], inf_bits: int) -> bool:
    """Do these 16-bit floats (F16: inf_bits 0x7C00, BF16: 0x7F80) hold NaN or Inf?

    Two reductions and no temporary: a positive NaN/Inf is the largest value as int16 (finite
    positives are below inf_bits), a negative one the largest as uint16 (finite negatives are
    below 0x8000 | inf_bits).
    """
    if bits.size == 0:
        return False
    return bool(int(bits.max()) >= inf_bits
                or int(bits.view(np.uint16).max()) >= (0x8000 | inf_bits))


class TensorReadError(Exception):
    """A tensor that cannot be read as floats (unsupported dtype, short file, inconsistent span)."""


@dataclass(frozen=True)
class RawTensor:
    """One tensor's bytes in its stored dtype, viewed as a 2-D (rows, cols) array."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    raw: npt.NDArray[np.generic]

    @property
    def rows(self) -> int:
        return int(self.raw.shape[0])

    @property
    def cols(self) -> int:
        return int(self.raw.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.raw.nbytes)

    def to_f64(self, part: npt.NDArray[np.generic]) -> F64:
        if self.dtype == "BF16":
            # bf16 is the top half of an IEEE float32.
            widened = part.astype(np.uint32) << np.uint32(16)
            return widened.view(np.float32).astype(np.float64)
        return np.asarray(part, dtype=np.float64)

    def to_float(self, part: npt.NDArray[np.generic],
                 scratch: npt.NDArray[np.int32] | None = None) -> Floats:
        """`part` as float32 (float64 for F64), exactly: f16 and bf16 are subsets of float32.

        NaN and Inf are kept. F16/BF16 blocks are widened into `scratch` (int32, at least
        part.size elements) when given: the caller reuses it, so the block is valid only until
        its next use (a fresh 512 KiB array per block cost page faults on every block).
        """
        if self.dtype == "F64":
            return np.asarray(part, dtype=np.float64)
        if self.dtype == "F32":
            return np.asarray(part, dtype=np.float32)
        if scratch is None or scratch.size < part.size:
            w = np.empty(part.shape, dtype=np.int32)
        else:
            w = scratch[:part.size].reshape(part.shape)
        if self.dtype == "BF16":  # bf16 is the top half of an IEEE float32
            np.copyto(w, part.view(np.uint16), casting="unsafe")
            np.left_shift(w, 16, out=w)
            return w.view(np.float32)
        # F16: sign-extend, move exponent and mantissa into float32 position, then scale by
        # 2**112, which is exact for normal and subnormal halves alike. NaN and Inf would come
        # out as finite values >= 2**16 (no finite half is that large): put them back.
        bits = part.view(np.int16)
        np.copyto(w, bits, casting="unsafe")
        np.left_shift(w, 13, out=w)
        np.bitwise_and(w, _F16_MASK, out=w)
        f = w.view(np.float32)
        np.multiply(f, _F16_TO_F32, out=f)
        if has_nonfinite_16(bits, 0x7C00):
            bad = np.abs(f) >= np.float32(65536.0)
            f[bad] = np.asarray(part)[bad].astype(np.float32)
        return f

    def block_rows(self, elems: int = BLOCK_ELEMS) -> int:
        return max(1, elems // max(1, self.cols))

    def blocks(self, elems: int = BLOCK_ELEMS) -> Iterator[tuple[int, F64]]:
        """(first row, float64 block) pairs covering the tensor."""
        step = self.block_rows(elems)
        for start in range(0, self.rows, step):
            yield start, self.to_f64(self.raw[start:start + step])

    def transposed(self) -> RawTensor:
        """The same bytes viewed as the transpose (MLX stores LoRA factors transposed)."""
        return RawTensor(self.name, self.dtype, tuple(reversed(self.shape)), self.raw.T)

    def dense(self) -> F64:
        return self.to_f64(self.raw)

    def all_finite(self) -> bool:
        return all(bool(np.isfinite(b).all()) for _, b in self.blocks())

    def all_zero(self) -> bool:
        if self.dtype == "BF16":  # +0 and -0 only
            return not bool((self.raw.view(np.uint16) & np.uint16(0x7FFF)).any())
        return not bool(np.asarray(self.raw).any())


def read_tensor(path: Path, header: DataLayout, info: TensorInfo) -> RawTensor:
    """Read one tensor (1-D or 2-D; higher ranks are flattened to (shape[0], rest))."""
    if info.dtype not in FLOAT_DTYPES:
        raise TensorReadError(f"dtype {info.dtype} is not a float type this analyzer reads")
    count = math.prod(info.shape) if info.shape else 1
    span = info.end - info.begin
    if info.dtype == "Q8_0":
        expected = count // Q8_0_BLOCK * Q8_0_BYTES if count % Q8_0_BLOCK == 0 else -1
    else:
        expected = count * _RAW[info.dtype][1]
    if span != expected or info.begin < 0:
        raise TensorReadError(f"byte span {span} does not match shape {list(info.shape)}")
    start = header.data_start + info.begin
    if start + span > header.file_size:
        raise TensorReadError("tensor extends past the end of the file")
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = map_span(fd, start, span)
    except SpanError as exc:
        raise TensorReadError(f"short read: {exc}") from exc
    finally:
        os.close(fd)
    dtype = info.dtype
    if dtype == "Q8_0":
        arr: npt.NDArray[np.generic] = _dequant_q8_0(buf, count)
        dtype = "F32"
    else:
        np_dtype = _RAW[dtype][0]
        arr = np.frombuffer(buf, dtype=np.dtype(np_dtype).newbyteorder("<"), count=count)
    if len(info.shape) <= 1:
        arr2 = arr.reshape(1, count)
    else:
        arr2 = arr.reshape(info.shape[0], count // max(1, info.shape[0]))
    return RawTensor(name=info.name, dtype=dtype, shape=info.shape, raw=arr2)


def _dequant_q8_0(buf: memoryview, count: int) -> npt.NDArray[np.float32]:
    """Q8_0 blocks (f16 scale d, 32 x int8 q) to float32 d·q: 4 bytes per value in memory."""
    blocks = np.frombuffer(buf, dtype=np.uint8).reshape(-1, Q8_0_BYTES)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)
    q = blocks[:, 2:].view(np.int8).astype(np.float32)
    return np.asarray((q * d).reshape(count), dtype=np.float32)


MAX_TRUSTED_HEADER = 100_000_000


def trusted_header(path: Path, rel: str) -> SafetensorsHeader:
    """Parse the header of a TRUSTED file (a base model the user named) with basic bounds checks.

    Used only for base-model weights, and only while the hardened parser is unavailable; adapter
    files are never read through this.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise TensorReadError(f"{rel}: shorter than 8 bytes")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_TRUSTED_HEADER or 8 + n > size:
            raise TensorReadError(f"{rel}: header length {n} out of bounds")
        table = json.loads(fh.read(n).decode("utf-8"))
    if not isinstance(table, dict):
        raise TensorReadError(f"{rel}: header is not a JSON object")
    tensors: list[TensorInfo] = []
    for name, spec in table.items():
        if name == "__metadata__":
            continue
        begin, end = (int(x) for x in spec["data_offsets"])
        if not 0 <= begin <= end <= size - 8 - n:
            raise TensorReadError(f"{rel}: tensor {name} offsets out of bounds")
        tensors.append(TensorInfo(name=str(name), dtype=str(spec["dtype"]),
                                  shape=tuple(int(x) for x in spec["shape"]), begin=begin,
                                  end=end))
    meta = table.get("__metadata__") or {}
    return SafetensorsHeader(path=rel, file_size=size, header_len=n,
                             metadata={str(k): str(v) for k, v in meta.items()},
                             tensors=tuple(sorted(tensors, key=lambda t: t.begin)))
