"""One small tensor (a bias, a DoRA magnitude, an (IA)3 gain) read whole as a float64 vector."""

from __future__ import annotations

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.static.formats.model import TensorRef
from adapterscan.static.formats.tensor_reader import F64, TensorReadError


def read_vector(ref: TensorRef, what: str, emit: Emitter) -> F64 | None:
    """The tensor's values, raveled; None (with a skip: not analysed) when it cannot be read."""
    try:
        raw = ref.read()
    except (OSError, TensorReadError) as exc:
        emit.skip(ref.file, f"{ref.info.name}: cannot read {what}: {exc}")
        return None
    with np.errstate(all="ignore"):
        return np.asarray(raw.to_f64(raw.raw).ravel(), dtype=np.float64)
