"""A bounded reader for NumPy `.npy` headers (also the members of `.npz` archives).

Object arrays are stored as a pickle right after the header (`np.load(allow_pickle=True)`
unpickles it), so the pickle analyzer walks that pickle; numeric arrays are data whose size the
header fixes. The header is a Python literal; it is parsed with `ast.literal_eval` (no code runs)
after its length is bounded, and the dtype is built by NumPy's own `descr_to_dtype`, the path
`np.load` takes.
"""

from __future__ import annotations

import ast
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAGIC = b"\x93NUMPY"
# np.load refuses headers over 10,000 bytes unless allow_pickle=True; we read up to this much.
MAX_HEADER = 1 << 20
_KEYS = {"descr", "fortran_order", "shape"}


class NpyError(ValueError):
    """The header is not one np.load would accept as written."""


@dataclass(frozen=True)
class NpyHeader:
    version: tuple[int, int]
    data_offset: int
    dtype: str
    shape: tuple[int, ...]
    has_object: bool
    data_bytes: int  # what the shape and dtype fix (0 for object arrays: a pickle follows)


def read_header(read: Callable[[int], bytes]) -> NpyHeader:
    """Parse a header from a stream positioned at its magic; leaves it at the data."""
    pre = read(10)
    if len(pre) < 10 or not pre.startswith(MAGIC):
        raise NpyError("shorter than the 10-byte preamble or not NumPy magic")
    version = (pre[6], pre[7])
    if version == (1, 0):
        hlen, fixed = struct.unpack("<H", pre[8:10])[0], 10
    elif version in ((2, 0), (3, 0)):
        more = read(2)
        if len(more) < 2:
            raise NpyError("truncated header length")
        hlen, fixed = struct.unpack("<I", pre[8:10] + more)[0], 12
    else:
        raise NpyError(f"unknown format version {version[0]}.{version[1]}")
    if hlen > MAX_HEADER:
        raise NpyError(f"header of {hlen} bytes (over {MAX_HEADER})")
    raw = read(hlen)
    if len(raw) < hlen:
        raise NpyError(f"header declares {hlen} bytes, {len(raw)} present")
    try:
        text = raw.decode("utf-8" if version == (3, 0) else "latin-1")
        value = ast.literal_eval(text)
    except (UnicodeDecodeError, ValueError, SyntaxError, TypeError, MemoryError,
            RecursionError) as exc:
        raise NpyError(f"header is not a Python literal ({type(exc).__name__})") from None
    if not isinstance(value, dict) or set(value) != _KEYS:
        raise NpyError("header is not a dict with exactly descr, fortran_order and shape")
    shape = value["shape"]
    if not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise NpyError(f"shape {shape!r} is not a tuple of non-negative ints")
    if not isinstance(value["fortran_order"], bool):
        raise NpyError("fortran_order is not a bool")
    try:
        dtype = np.lib.format.descr_to_dtype(value["descr"])
    except Exception as exc:  # numpy raises TypeError/ValueError/KeyError on bad descr
        raise NpyError(f"descr is not a dtype ({type(exc).__name__})") from None
    count = math.prod(shape)
    return NpyHeader(version=version, data_offset=fixed + hlen, dtype=str(dtype),
                     shape=shape, has_object=bool(dtype.hasobject),
                     data_bytes=0 if dtype.hasobject else count * dtype.itemsize)
