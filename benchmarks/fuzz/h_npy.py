"""The pickle machine on NumPy .npy arrays (object arrays hold a pickle)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.fuzz.pickle_target import pickle_target

ALLOWED: tuple[type[BaseException], ...] = ()
MAX_LEN = 16384


def prepare(scratch: Path, assets: Path) -> Callable[[bytes], None]:
    return pickle_target(scratch, "weights.npy")
