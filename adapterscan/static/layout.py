"""Where a validated container keeps its tensors: names, dtypes, shapes and byte spans.

The lowest floor of the static stage: it imports nothing from adapterscan, so the safetensors
parser, the GGUF parser, the tensor reader and the adapter model all build on it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offset into the data section (after the 8 + N header bytes)
    end: int


class DataLayout(Protocol):
    """Where a validated container's tensor data starts and how long the file is."""

    @property
    def data_start(self) -> int: ...

    @property
    def file_size(self) -> int: ...


@dataclass(frozen=True)
class SafetensorsHeader:
    """A safetensors header that passed every structural check of our parser.

    Only headers that passed are ever returned: callers may trust offsets and sizes here.
    """

    path: str
    file_size: int
    header_len: int
    metadata: Mapping[str, str]
    tensors: tuple[TensorInfo, ...]

    @property
    def data_start(self) -> int:
        return 8 + self.header_len

    def tensor(self, name: str) -> TensorInfo | None:
        for t in self.tensors:
            if t.name == name:
                return t
        return None


@dataclass(frozen=True)
class TorchArchiveTable:
    """The tensor table of a torch zip archive (`torch.save`), read from its data.pkl without
    unpickling and checked against the archive's members.

    Storages are stored (uncompressed) zip members, so every tensor is one contiguous span of
    the file: `begin`/`end` are absolute file offsets and `data_start` is 0. Only tables whose
    every tensor passed the checks are ever returned.
    """

    path: str
    file_size: int
    tensors: tuple[TensorInfo, ...]
    # [begin, end) file offsets of each storage member's bytes, in file order.
    storages: tuple[tuple[int, int], ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def data_start(self) -> int:
        return 0

    def storage_sections(self) -> tuple[SafetensorsHeader, ...]:
        """Each storage member as a data section of its own (data_start at the member's first
        byte, tensors relative to it): the safetensors data scan reads tensor bytes only, never
        the zip headers between members."""
        out: list[SafetensorsHeader] = []
        for begin, end in self.storages:
            inside = tuple(TensorInfo(t.name, t.dtype, t.shape, t.begin - begin, t.end - begin)
                           for t in self.tensors if begin <= t.begin and t.end <= end)
            if inside:
                out.append(SafetensorsHeader(self.path, self.file_size, begin - 8, {}, inside))
        return tuple(out)


# A validated table of an adapter weights file, whatever its container.
TensorTable = SafetensorsHeader | TorchArchiveTable
