"""Bounded reads of one tensor from a validated safetensors header.

The reader reads exactly the bytes [data_start + begin, data_start + end) of the file and keeps
them in their stored dtype; conversion to float64 happens in row blocks so that peak memory stays
close to the stored size of the tensor (bf16 has no numpy dtype: it is widened bit-wise).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from adapterscan.static.model import SafetensorsHeader, TensorInfo

F64 = npt.NDArray[np.float64]

# Stored dtype -> (numpy dtype of the raw bytes, bytes per element).
_RAW: dict[str, tuple[type[np.generic], int]] = {
    "F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2),
    "BF16": (np.uint16, 2),
}
FLOAT_DTYPES = frozenset(_RAW)
# Rows converted to float64 at a time (bounded temporary memory: block x columns x 8 bytes).
BLOCK_ELEMS = 1 << 15


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

    def block_rows(self, elems: int = BLOCK_ELEMS) -> int:
        return max(1, elems // max(1, self.cols))

    def blocks(self, elems: int = BLOCK_ELEMS) -> Iterator[tuple[int, F64]]:
        """(first row, float64 block) pairs covering the tensor."""
        step = self.block_rows(elems)
        for start in range(0, self.rows, step):
            yield start, self.to_f64(self.raw[start:start + step])

    def take_rows(self, index: npt.NDArray[np.intp]) -> F64:
        return self.to_f64(self.raw[index])

    def take_cols(self, index: npt.NDArray[np.intp]) -> F64:
        return self.to_f64(self.raw[:, index])

    def dense(self) -> F64:
        return self.to_f64(self.raw)

    def all_finite(self) -> bool:
        return all(bool(np.isfinite(b).all()) for _, b in self.blocks())

    def all_zero(self) -> bool:
        if self.dtype == "BF16":  # +0 and -0 only
            return not bool((self.raw.view(np.uint16) & np.uint16(0x7FFF)).any())
        return not bool(np.asarray(self.raw).any())


def read_tensor(path: Path, header: SafetensorsHeader, info: TensorInfo) -> RawTensor:
    """Read one tensor (1-D or 2-D; higher ranks are flattened to (shape[0], rest))."""
    if info.dtype not in _RAW:
        raise TensorReadError(f"dtype {info.dtype} is not a float type this analyzer reads")
    np_dtype, size = _RAW[info.dtype]
    count = math.prod(info.shape) if info.shape else 1
    span = info.end - info.begin
    if span != count * size or info.begin < 0:
        raise TensorReadError(f"byte span {span} does not match shape {list(info.shape)}")
    start = header.data_start + info.begin
    if start + span > header.file_size:
        raise TensorReadError("tensor extends past the end of the file")
    with path.open("rb") as fh:
        fh.seek(start)
        buf = fh.read(span)
    if len(buf) != span:
        raise TensorReadError(f"short read: {len(buf)} of {span} bytes (file changed?)")
    arr = np.frombuffer(buf, dtype=np.dtype(np_dtype).newbyteorder("<"), count=count)
    if len(info.shape) <= 1:
        arr2 = arr.reshape(1, count)
    else:
        arr2 = arr.reshape(info.shape[0], count // max(1, info.shape[0]))
    return RawTensor(name=info.name, dtype=info.dtype, shape=info.shape, raw=arr2)


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
