"""PEFT's `adapter_model.bin` (a torch zip archive) as a validated tensor table.

The table comes from data.pkl by an opcode walk (pickle/torch_table.py, never unpickled); every
tensor is then checked against the archive as torch's loader would resolve it: its storage
member exists, is stored uncompressed at a parsed local header, holds exactly the storage's
bytes, and the tensor is a C-contiguous span inside it. A file that fails any check is not
read (a skip with the reason: the scan ends incomplete); nothing is guessed. Legacy (pre-1.6,
non-zip) torch pickles and compressed members are named as unsupported.
"""

from __future__ import annotations

import os
import posixpath
import stat
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from adapterscan.emit import Emitter
from adapterscan.static.layout import TensorInfo, TensorTable, TorchArchiveTable
from adapterscan.static.limits import StaticLimits
from adapterscan.static.pickle import zip_container as zc
from adapterscan.static.pickle.torch_table import PickledTensor, TableError, read_table

BIN_NAMES = frozenset({"adapter_model.bin", "adapter_model.pt"})
# torch storage class -> (our dtype name, bytes per element). Names as tensor_reader knows them.
STORAGE_DTYPES: Mapping[str, tuple[str, int]] = {
    "torch.FloatStorage": ("F32", 4), "torch.DoubleStorage": ("F64", 8),
    "torch.HalfStorage": ("F16", 2), "torch.BFloat16Storage": ("BF16", 2),
    "torch.LongStorage": ("I64", 8), "torch.IntStorage": ("I32", 4),
    "torch.ShortStorage": ("I16", 2), "torch.CharStorage": ("I8", 1),
    "torch.ByteStorage": ("U8", 1), "torch.BoolStorage": ("BOOL", 1),
}


class ArchiveError(Exception):
    """The archive's tensors cannot be located with certainty: the message says why."""


def read_torch_tables(root: Path, paths: Sequence[str], tables: Mapping[str, TensorTable],
                      emit: Emitter, limits: StaticLimits) -> dict[str, TorchArchiveTable]:
    """Tables of the PEFT `.bin` weights among `paths` (local files) that PEFT would load:
    those with no validated adapter_model.safetensors beside them (PEFT prefers that file)."""
    st_dirs = {posixpath.dirname(p) for p in tables
               if posixpath.basename(p) == "adapter_model.safetensors"}
    out: dict[str, TorchArchiveTable] = {}
    for rel in sorted(paths):
        if posixpath.basename(rel) not in BIN_NAMES or posixpath.dirname(rel) in st_dirs:
            continue
        try:
            out[rel] = read_archive(root / rel, rel, limits)
        except ArchiveError as exc:
            emit.skip(rel, f"tensor table not read: {exc}")
    return out


def read_archive(path: Path, rel: str, limits: StaticLimits) -> TorchArchiveTable:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ArchiveError(f"cannot open: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError("not a regular file")
        return _read(f, st.st_size, rel, limits)


def _read(f: BinaryIO, size: int, rel: str, limits: StaticLimits) -> TorchArchiveTable:
    if not f.read(4).startswith(zc.LOCAL_MAGIC):
        raise ArchiveError("not a torch zip archive (a legacy torch pickle, unsupported)")
    try:
        members, _ = zc.open_zip(f, size, limits.max_zip_members)
    except zc.ZipUnreadable as exc:
        raise ArchiveError(f"zip archive cannot be parsed ({exc})") from None
    by_name: dict[str, zc.Member] = {}
    for m in members:
        if m.name in by_name:  # readers disagree on which copy they load
            raise ArchiveError(f"member {m.name[:200]!r} appears more than once")
        by_name[m.name] = m
    pkls = [n for n in by_name if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise ArchiveError(f"{len(pkls)} top-level data.pkl members (torch reads exactly one)")
    prefix = pkls[0][: -len("data.pkl")]
    _check_byteorder(f, by_name.get(prefix + "byteorder"))
    data = _member_bytes(f, by_name[pkls[0]], limits.max_header_bytes)
    try:
        found = read_table(data, limits.max_pickle_opcodes, limits.max_tensors)
    except TableError as exc:
        raise ArchiveError(f"data.pkl is not a plain dict of tensors: {exc}") from None
    tensors = [_locate(t, by_name, prefix, size) for t in found]
    used = {by_name[f"{prefix}data/{t.storage.key}"] for t in found}
    spans = sorted((m.data_offset, m.data_offset + m.file_size) for m in used
                   if m.data_offset is not None)
    return TorchArchiveTable(rel, size, tuple(sorted(tensors, key=lambda t: t.begin)),
                             tuple(spans))


def _member_bytes(f: BinaryIO, m: zc.Member, cap: int) -> bytes:
    _check_stored(m)
    if m.file_size > cap:
        raise ArchiveError(f"{m.name[:200]} is {m.file_size} bytes, over the {cap}-byte cap")
    data = b"".join(zc.iter_member(f, m, m.file_size))
    if len(data) != m.file_size:
        raise ArchiveError(f"{m.name[:200]} is shorter than its declared size")
    return data


def _check_stored(m: zc.Member) -> None:
    if m.data_offset is None:
        raise ArchiveError(f"member {m.name[:200]} has no readable local header")
    if m.method != zipfile.ZIP_STORED:
        # torch writes every member stored; a re-packed archive is not read.
        raise ArchiveError(f"member {m.name[:200]} is compressed (method {m.method}), "
                           "unsupported")
    if m.compress_size != m.file_size:
        raise ArchiveError(f"stored member {m.name[:200]} declares {m.file_size} bytes but "
                           f"occupies {m.compress_size}")


def _check_byteorder(f: BinaryIO, m: zc.Member | None) -> None:
    # torch reads storages little-endian when the record is absent (archives before 1.10).
    if m is None:
        return
    mark = _member_bytes(f, m, 16)
    if mark != b"little":
        raise ArchiveError(f"byteorder {mark[:16]!r}: only little-endian storages are read")


def _locate(t: PickledTensor, members: Mapping[str, zc.Member], prefix: str,
            size: int) -> TensorInfo:
    name = t.name[:200]
    dtype = STORAGE_DTYPES.get(t.storage.type_name)
    if dtype is None:
        raise ArchiveError(f"tensor {name!r}: storage type {t.storage.type_name[:100]} unknown")
    m = members.get(f"{prefix}data/{t.storage.key}")
    if m is None:
        raise ArchiveError(f"tensor {name!r}: storage member data/{t.storage.key[:100]} missing")
    _check_stored(m)
    item = dtype[1]
    if t.storage.numel * item != m.file_size:
        raise ArchiveError(f"tensor {name!r}: storage declares {t.storage.numel} elements, "
                           f"its member holds {m.file_size} bytes")
    if any(d < 0 for d in t.size):
        raise ArchiveError(f"tensor {name!r}: negative dimension in {list(t.size)}")
    numel = 1
    expected: list[int] = []
    for d in reversed(t.size):
        expected.append(numel)
        numel *= d
        if numel > t.storage.numel:  # also bounds the product: no overflow, no huge shape
            raise ArchiveError(f"tensor {name!r}: shape {list(t.size)} is larger than its "
                               f"storage ({t.storage.numel} elements)")
    expected.reverse()
    # Strides of dimensions of size 1 do not move through memory; torch leaves them free.
    if any(d != 1 and s != e for d, s, e in zip(t.size, t.stride, expected, strict=True)):
        raise ArchiveError(f"tensor {name!r}: stride {list(t.stride)} is not C-contiguous for "
                           f"shape {list(t.size)}")
    if t.offset < 0 or t.offset + numel > t.storage.numel:
        raise ArchiveError(f"tensor {name!r}: elements [{t.offset}, {t.offset + numel}) lie "
                           f"outside its storage of {t.storage.numel}")
    assert m.data_offset is not None
    begin = m.data_offset + t.offset * item
    end = begin + numel * item
    if end > size:  # open_zip checked the member's span; kept as a guard
        raise ArchiveError(f"tensor {name!r} runs past the end of the file")
    return TensorInfo(t.name, dtype[0], t.size, begin, end)
