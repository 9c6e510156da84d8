"""The strength axis of planted payloads (issue 23): how much a payload changes the merged
model's output on its target rows, relative to how much the adapter's own typical module changes
an output row. Exact from the factors; not on the scan path.

For a unit input x drawn uniformly from the sphere of R^in, E‖Mx‖² = ‖M‖²_F / in. So the
payload's RMS change on one of its target rows R is √(‖s·(B′A′ − BA)_R‖²_F / (|R|·in)), and a
module m's RMS change on one of its rows is √(‖s_m·B_m A_m‖²_F / (out_m·in_m)). The strength is
the first divided by the median of the second over the adapter's live modules (unplanted):
strength 1 means each target row moves as much as a row of a typical module does. `s` is the
scale PEFT applies (lora_alpha / r, rank_pattern and alpha_pattern, rsLoRA), as the scanner's
reader reads it from the adapter's config.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from adapterscan.static.weights.alignment import parse_header
from adapterscan.static.weights.analysis import describe

F64 = npt.NDArray[np.float64]


def gram_norm2(b: F64, a: F64) -> float:
    """‖B·A‖²_F = tr((BᵀB)(AAᵀ)), without forming B·A."""
    return float(max(np.sum((b.T @ b) * (a @ a.T)), 0.0))


def change_on_rows(b: F64, a: F64, b2: F64, a2: F64, rows: Sequence[int] | None) -> float:
    """RMS over the target rows (all rows when None) of ‖row of (B₂A₂ − BA)‖ / √in."""
    idx = np.arange(b.shape[0]) if rows is None else np.asarray(rows)
    x = np.hstack([b2[idx], -b[idx]])  # (B₂A₂ − BA)_R = [B₂_R, −B_R]·[A₂; A]
    y = np.vstack([a2, a])
    return float(np.sqrt(gram_norm2(x, y) / (idx.size * a.shape[1])))


def row_rms(b: F64, a: F64) -> float:
    """A module's RMS change of one output row for a unit input: ‖BA‖_F / √(out·in)."""
    return float(np.sqrt(gram_norm2(b, a) / (b.shape[0] * a.shape[1])))


def module_scales(folder: Path) -> dict[str, float]:
    """The scale s of every LoRA module, by its A tensor's name, as the scanner reads it."""
    files = sorted(folder.glob("*.safetensors"))
    headers = {f.name: parse_header(f, f.name) for f in files}
    cfg_path = folder / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text("utf-8")) if cfg_path.is_file() else None
    model = describe(folder, headers, cfg if isinstance(cfg, dict) else None)
    return {m.a.info.name: m.scale.value for m in model.modules if m.a is not None}


def typical_row_rms(pairs: Sequence[tuple[F64, F64, float]]) -> float:
    """The median over modules (B, A, s) of s·‖BA‖_F / √(out·in); 0 when there is none."""
    values = [s * row_rms(b, a) for b, a, s in pairs if s * row_rms(b, a) > 0]
    return statistics.median(values) if values else 0.0
