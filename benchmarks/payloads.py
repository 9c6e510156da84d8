"""Planted payloads in real adapters: copy an adapter folder and rewrite some of its LoRA factors.

Not on the scan path (benchmarks only). Works on the safetensors LoRA files the readers know (PEFT
`lora_A`/`lora_B`, diffusers `lora.down`/`lora.up` and `_lora.down`/`_lora.up`), F32, F16 and
BF16, keeping every other tensor, the key order and `__metadata__` byte for byte in meaning.

Payloads (strength t):
- `scale`: one mid-depth module's B × t (a module trained or edited far harder than its siblings).
- `rows`: one LoRA direction (the strongest) of a mid-depth module moved into 4 output rows:
  b_j ← ‖b_j‖·normalise(√(1−t)·b̂_j + √t·u), u a unit vector on 4 rows; then B is rescaled so
  that ‖ΔW‖_F is what it was (a concentration payload; t = 1 moves the whole direction).
- `rotate`: the same direction turned (fraction t) towards a random direction orthogonal to B's
  columns, ‖b_j‖ and ‖ΔW‖_F kept: the update now writes into an unrelated subspace.
- `nan`: a fraction t of one module's A entries set to NaN (t = 0 means one entry).
- `overflow`: one module's B × 10^t (huge finite factors; beyond the dtype's range they are
  stored as Inf).
- `rank`: every module's rank × t with random directions of the module's typical norm, the
  config's r (and lora_alpha, so the scale is unchanged) raised to match.

`plant` takes the parameter itself; `plant_at` takes a strength (payload_strength.py: the target
rows' output change over a typical module's row) and solves `scale`'s k exactly and `rows`' and
`rotate`'s t by bisection, raising Unreachable when t = 1 falls short.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchmarks.payload_strength import change_on_rows, module_scales, row_rms, typical_row_rms

F64 = npt.NDArray[np.float64]
_PAIRS = (("lora_A.", "lora_B."), ("lora.down.", "lora.up."), ("_lora.down.", "_lora.up."))
_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


@dataclass
class StFile:
    """A safetensors file as its header entries and raw tensor bytes, in file order."""

    metadata: dict[str, str] | None
    names: list[str]
    dtypes: dict[str, str]
    shapes: dict[str, list[int]]
    raw: dict[str, bytes]

    @classmethod
    def read(cls, path: Path) -> StFile:
        data = path.read_bytes()
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        meta = header.pop("__metadata__", None)
        names = sorted(header, key=lambda k: header[k]["data_offsets"][0])
        base = 8 + n
        return cls(meta, names, {k: header[k]["dtype"] for k in names},
                   {k: list(header[k]["shape"]) for k in names},
                   {k: data[base + header[k]["data_offsets"][0]:
                            base + header[k]["data_offsets"][1]] for k in names})

    def get(self, name: str) -> F64:
        dt, raw = self.dtypes[name], self.raw[name]
        if dt == "BF16":
            bits = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
            x = bits.view(np.float32).astype(np.float64)
        else:
            x = np.frombuffer(raw, _NP[dt]).astype(np.float64)
        return x.reshape(self.shapes[name])

    def put(self, name: str, x: F64) -> None:
        dt = self.dtypes[name]
        self.shapes[name] = list(x.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            if dt == "BF16":  # round to nearest even on the top 16 bits
                bits = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
                rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
                nan = np.isnan(x.astype(np.float32)).ravel()
                out = rounded.astype(np.uint16).ravel()
                out[nan] = 0x7FC0
                self.raw[name] = out.tobytes()
            else:
                self.raw[name] = np.ascontiguousarray(x, _NP[dt]).tobytes()

    def write(self, path: Path) -> None:
        header: dict[str, object] = {} if self.metadata is None else {
            "__metadata__": self.metadata}
        offset = 0
        for k in self.names:
            size = len(self.raw[k])
            header[k] = {"dtype": self.dtypes[k], "shape": self.shapes[k],
                         "data_offsets": [offset, offset + size]}
            offset += size
        hb = json.dumps(header, separators=(",", ":")).encode()
        hb += b" " * (-len(hb) % 8)
        with path.open("wb") as fh:
            fh.write(struct.pack("<Q", len(hb)) + hb)
            for k in self.names:
                fh.write(self.raw[k])


@dataclass(frozen=True)
class Pair:
    a: str
    b: str


def lora_pairs(st: StFile) -> list[Pair]:
    """(A, B) tensor names of every 2-D LoRA pair, in natural (layer-number) order."""
    out = []
    for name in st.names:
        for ma, mb in _PAIRS:
            if ma in name:
                head, _, tail = name.rpartition(ma)
                b = head + mb + tail
                if b in st.shapes and len(st.shapes[name]) == 2 and len(st.shapes[b]) == 2:
                    out.append(Pair(name, b))
                break
    return sorted(out, key=lambda p: [int(t) if t.isdigit() else t
                                      for t in re.split(r"(\d+)", p.a)])


def weights_file(folder: Path) -> Path | None:
    for name in ("adapter_model.safetensors", "pytorch_lora_weights.safetensors"):
        if (folder / name).is_file():
            return folder / name
    return None


def live_pairs(st: StFile) -> list[Pair]:
    return [p for p in lora_pairs(st) if np.any(st.get(p.b)) and np.any(st.get(p.a))]


def mid_pair(st: StFile) -> Pair | None:
    live = live_pairs(st)
    return live[len(live) // 2] if live else None


def _fro(b: F64, a: F64) -> float:
    return float(np.sqrt(max(np.trace((b.T @ b) @ (a @ a.T)), 0.0)))


def _strongest(b: F64, a: F64) -> int:
    return int(np.argmax(np.linalg.norm(b, axis=0) * np.linalg.norm(a, axis=1)))


def _turn(b: F64, a: F64, j: int, target: F64, t: float) -> F64:
    """B with column j turned (fraction t of its energy) to the unit vector `target`, ‖b_j‖
    kept, then B rescaled so that ‖BA‖_F is unchanged."""
    fro = _fro(b, a)
    col = b[:, j]
    norm = float(np.linalg.norm(col))
    new = np.sqrt(1.0 - t) * col / norm + np.sqrt(t) * target
    out = b.copy()
    out[:, j] = norm * new / np.linalg.norm(new)
    return out * (fro / _fro(out, a))


def _row_target(b: F64, rng: np.random.Generator) -> tuple[F64, list[int]]:
    """A unit vector on 4 random output rows (random signs), and those rows."""
    u = np.zeros(b.shape[0])
    rows = rng.choice(b.shape[0], size=min(4, b.shape[0]), replace=False)
    u[rows] = rng.choice([-1.0, 1.0], size=rows.size) / np.sqrt(rows.size)
    return u, sorted(int(i) for i in rows)


def _unrelated(b: F64, rng: np.random.Generator) -> F64:
    """A random unit vector orthogonal to B's columns."""
    q, _ = np.linalg.qr(b)
    v: F64 = np.asarray(rng.normal(size=b.shape[0]), dtype=np.float64)
    v = v - q @ (q.T @ v)
    return v / float(np.linalg.norm(v))


def _rows(b: F64, a: F64, t: float, rng: np.random.Generator) -> F64:
    return _turn(b, a, _strongest(b, a), _row_target(b, rng)[0], t)


def _rotate(b: F64, a: F64, t: float, rng: np.random.Generator) -> F64:
    return _turn(b, a, _strongest(b, a), _unrelated(b, rng), t)


def _inflate(st: StFile, factor: float, rng: np.random.Generator) -> dict[str, float]:
    """Every pair's rank × factor; returns each pair's added update's row RMS (A's name → value,
    scale not applied)."""
    added: dict[str, float] = {}
    for p in lora_pairs(st):
        a, b = st.get(p.a), st.get(p.b)
        r = a.shape[0]
        extra = max(1, round(r * (factor - 1.0)))
        extra = min(extra, min(a.shape[1], b.shape[0]) - r)
        if extra <= 0:
            continue
        na = float(np.median(np.linalg.norm(a, axis=1)))
        nb = float(np.median(np.linalg.norm(b, axis=0)))
        xa = rng.normal(size=(extra, a.shape[1]))
        xb = rng.normal(size=(b.shape[0], extra))
        xa *= na / np.linalg.norm(xa, axis=1, keepdims=True)
        xb *= nb / np.linalg.norm(xb, axis=0, keepdims=True)
        st.put(p.a, np.vstack([a, xa]))
        st.put(p.b, np.hstack([b, xb]))
        added[p.a] = row_rms(xb, xa)
    return added


def _config_rank(folder: Path, factor: float) -> None:
    path = folder / "adapter_config.json"
    if not path.is_file():
        return
    cfg = json.loads(path.read_text("utf-8"))
    r = cfg.get("r")
    if isinstance(r, int) and r > 0:
        new = r + max(1, round(r * (factor - 1.0)))
        alpha = cfg.get("lora_alpha")
        cfg["r"] = new
        if isinstance(alpha, int | float):
            cfg["lora_alpha"] = alpha * new / r  # same scale alpha/r
        path.write_text(json.dumps(cfg, indent=2), "utf-8")


Edit = Callable[[F64, F64, float, np.random.Generator], tuple[F64, F64]]
EDITS: dict[str, Edit] = {
    "scale": lambda b, a, t, rng: (b * t, a),
    "rows": lambda b, a, t, rng: (_rows(b, a, t, rng), a),
    "rotate": lambda b, a, t, rng: (_rotate(b, a, t, rng), a),
    "overflow": lambda b, a, t, rng: (b * 10.0 ** t, a),
}


def _nan(a: F64, t: float, rng: np.random.Generator) -> F64:
    out = a.copy().ravel()
    count = max(1, round(t * out.size))
    out[rng.choice(out.size, size=count, replace=False)] = np.nan
    return out.reshape(a.shape)


class Unreachable(ValueError):
    """The payload cannot reach the asked strength in this adapter (t = 1 is weaker)."""


@dataclass(frozen=True)
class Planted:
    module: str  # the A tensor's name
    parameter: float  # k of `scale`, t of `rows` and `rotate`
    strength: float  # payload_strength: the target rows' change over a typical module's row


AT_STRENGTH = ("scale", "rows", "rotate")


def _solve_t(strength_of: Callable[[float], float], target: float) -> float:
    """The t in (0, 1] where strength_of(t) first reaches `target` (bisection)."""
    if strength_of(1.0) < target:
        raise Unreachable(f"strength at t = 1 is {strength_of(1.0):.3g} < {target:g}")
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if strength_of(mid) < target else (lo, mid)
    return hi


def plant_at(src: Path, dst: Path, payload: str, target: float, *, seed: int = 0) -> Planted:
    """Copy `src` to `dst` with a `scale`, `rows` or `rotate` payload in its mid-depth live
    module, its parameter chosen so that the payload's strength (payload_strength.py) is
    `target`. Raises Unreachable (or ValueError: no live pair) without copying."""
    path = weights_file(src)
    if path is None:
        raise ValueError("no safetensors LoRA weights file")
    st = StFile.read(path)
    pair = mid_pair(st)
    if pair is None:
        raise ValueError("no live LoRA pair")
    scales = module_scales(src)
    typ = typical_row_rms([(st.get(p.b), st.get(p.a), scales.get(p.a, 1.0))
                           for p in live_pairs(st)])
    b, a = st.get(pair.b), st.get(pair.a)
    s = scales.get(pair.a, 1.0)
    rng = np.random.default_rng(seed)
    if payload == "scale":
        k = 1.0 + target * typ / (s * row_rms(b, a))
        new, param = b * k, k
        achieved = s * change_on_rows(b, a, new, a, None) / typ
    else:
        j = _strongest(b, a)
        u, rows = _row_target(b, rng) if payload == "rows" else (_unrelated(b, rng), None)

        def strength_of(t: float) -> float:
            return s * change_on_rows(b, a, _turn(b, a, j, u, t), a, rows) / typ

        param = _solve_t(strength_of, target)
        new, achieved = _turn(b, a, j, u, param), strength_of(param)
    shutil.copytree(src, dst)
    st.put(pair.b, new)
    st.write(dst / path.name)
    return Planted(pair.a, param, achieved)


def plant(src: Path, dst: Path, payload: str, strength: float, *, seed: int = 0) -> Planted:
    """Copy `src` to `dst` with `payload` at parameter `strength` planted; returns the module
    (or "all") it went into and, for `rank`, the median over modules of the payload's strength
    (NaN for the others). Raises ValueError when the adapter has no live LoRA pair."""
    path = weights_file(src)
    if path is None:
        raise ValueError("no safetensors LoRA weights file")
    st = StFile.read(path)
    live = live_pairs(st)
    if not live:
        raise ValueError("no live LoRA pair")
    rng = np.random.default_rng(seed)
    if payload == "rank":
        scales = module_scales(src)  # lora_alpha is raised with r: the scale stays
        typ = typical_row_rms([(st.get(p.b), st.get(p.a), scales.get(p.a, 1.0)) for p in live])
        added = _inflate(st, strength, rng)
        shutil.copytree(src, dst)
        _config_rank(dst, strength)
        st.write(dst / path.name)
        values = [scales.get(k, 1.0) * v / typ for k, v in added.items()]
        return Planted("all", strength, float(np.median(values)) if values else math.nan)
    pair = live[len(live) // 2]
    b, a = st.get(pair.b), st.get(pair.a)
    if payload == "nan":
        st.put(pair.a, _nan(a, strength, rng))
    else:
        nb, na = EDITS[payload](b, a, strength, rng)
        st.put(pair.b, nb)
        st.put(pair.a, na)
    shutil.copytree(src, dst)
    st.write(dst / path.name)
    return Planted(pair.a, strength, math.nan)
