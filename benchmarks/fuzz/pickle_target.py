"""The pickle machine's entry point, shared by the raw, torch-zip, npy and npz harnesses: they
differ in the file name (which decides nothing but the report) and in their seeds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adapterscan.static.formats.torch_archive import read_torch_tables
from adapterscan.static.pickle.ops import analyze_pickle_file
from benchmarks.fuzz.common import LIMITS, check_report, emitter, write


def pickle_target(scratch: Path, name: str) -> Callable[[bytes], None]:
    def target(raw: bytes) -> None:
        path = write(scratch, name, raw)
        emit = emitter()
        analyze_pickle_file(path, name, emit, LIMITS)
        # PEFT `.bin` weights: the tensor table the weight statistics read.
        read_torch_tables(scratch, [name], {}, emit, LIMITS)
        check_report(emit)
    return target
