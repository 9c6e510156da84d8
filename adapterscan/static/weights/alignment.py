"""Comparisons with base weights: relative update ‖ΔW‖/‖W‖ and the Safe-LoRA alignment cosine.

Safe-LoRA (Hsu et al. 2024): V = W_aligned − W_unaligned, C = VVᵀ/‖V‖_F, and a layer whose
cos(C·ΔW, ΔW) is below τ leaves the alignment subspace. With ΔW = s·B·A, P = VᵀB (in×r) and
Q = (VP)ᵀ(VP) (r×r), everything is r×r: ⟨CΔW, ΔW⟩ ∝ tr(PᵀP·AAᵀ), ‖CΔW‖² ∝ tr(Q·AAᵀ) and
‖ΔW‖² ∝ tr(BᵀB·AAᵀ) (s and ‖V‖ cancel in the cosine). V is streamed in row blocks of W.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.errors import AdapterScanError
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.static.formats.tensor_reader import F64, RawTensor, read_tensor, trusted_header
from adapterscan.static.layout import SafetensorsHeader, TensorInfo
from adapterscan.static.limits import StaticLimits
from adapterscan.static.safetensors.header import read_header_file

BASE_BLOCK_ELEMS = 1 << 20
MAX_BASE_FILES = 4096


class BaseModelError(Exception):
    """A base model folder that cannot be indexed."""


def parse_header(path: Path, rel: str, ruleset: RuleSet | None = None) -> SafetensorsHeader:
    """Prefer the hardened parser; base models are trusted, so a scratch emitter swallows notes."""
    try:
        header = read_header_file(path, rel, Emitter(ruleset or load_ruleset()), StaticLimits())
    except NotImplementedError:
        return trusted_header(path, rel)
    except AdapterScanError:  # the rule set is not loadable in this build: bounded fallback
        return trusted_header(path, rel)
    if header is None:
        raise BaseModelError(f"{rel}: the safetensors parser rejected this base weight file")
    return header


@dataclass(frozen=True)
class BaseWeights:
    """Name → tensor index over the *.safetensors files of a (trusted) base model folder."""

    root: Path
    index: dict[str, tuple[Path, SafetensorsHeader, TensorInfo]]

    @classmethod
    def open(cls, root: Path) -> BaseWeights:
        files = sorted(root.glob("*.safetensors"))
        if not files:
            raise BaseModelError(f"{root}: no *.safetensors weight files")
        if len(files) > MAX_BASE_FILES:
            raise BaseModelError(f"{root}: more than {MAX_BASE_FILES} weight files")
        index: dict[str, tuple[Path, SafetensorsHeader, TensorInfo]] = {}
        try:
            ruleset: RuleSet | None = load_ruleset()
        except AdapterScanError:
            ruleset = None
        for f in files:
            header = parse_header(f, f.name, ruleset)
            for info in header.tensors:
                index.setdefault(info.name, (f, header, info))
        return cls(root, index)

    def find(self, target: str, suffix: str = ".weight") -> str | None:
        """The base tensor name for a module path such as `model.layers.0.self_attn.q_proj`."""
        stem = target.removeprefix("model.")
        for cand in (target + suffix, "model." + stem + suffix, stem + suffix):
            if cand in self.index:
                return cand
        return None

    def read(self, name: str) -> RawTensor:
        path, header, info = self.index[name]
        return read_tensor(path, header, info)


def frobenius(t: RawTensor) -> float:
    total = 0.0
    for _, blk in t.blocks(BASE_BLOCK_ELEMS):
        total += float(np.einsum("ij,ij->", blk, blk))
    return math.sqrt(total)


def oriented(w: RawTensor, out: int, inp: int, fan_in_fan_out: bool) -> RawTensor | None:
    """The base weight as [out, in], the orientation of ΔW = B·A; None when its shape fits
    neither way. GPT-2-family Conv1D layers store [in, out]: PEFT's `fan_in_fan_out` says so
    (it sets the flag in the config for such targets) and merges ΔWᵀ into them."""
    if fan_in_fan_out and (w.cols, w.rows) == (out, inp):
        return RawTensor(w.name, w.dtype, (w.cols, w.rows), w.raw.T)
    if (w.rows, w.cols) == (out, inp):
        return w
    return None


def safe_lora_cosine(w_aligned: RawTensor, w_unaligned: RawTensor, b: F64, gram_a: F64,
                     gram_b: F64) -> float | None:
    """cos(C·ΔW, ΔW) for ΔW ∝ B·A; None when V = 0 or ΔW = 0."""
    step = w_aligned.block_rows(BASE_BLOCK_ELEMS)
    rows, cols = w_aligned.rows, w_aligned.cols
    p = np.zeros((cols, b.shape[1]))
    v_norm2 = 0.0
    for i in range(0, rows, step):
        v = w_aligned.to_f64(w_aligned.raw[i:i + step]) - w_unaligned.to_f64(
            w_unaligned.raw[i:i + step])
        v_norm2 += float(np.einsum("ij,ij->", v, v))
        p += v.T @ b[i:i + step]
    q = np.zeros((b.shape[1], b.shape[1]))
    for i in range(0, rows, step):
        v = w_aligned.to_f64(w_aligned.raw[i:i + step]) - w_unaligned.to_f64(
            w_unaligned.raw[i:i + step])
        vp = v @ p
        q += vp.T @ vp
    num = float(np.sum((p.T @ p) * gram_a))
    proj2 = float(np.sum(q * gram_a))
    dw2 = float(np.sum(gram_b * gram_a))
    if v_norm2 <= 0.0 or proj2 <= 0.0 or dw2 <= 0.0:
        return None
    return num / math.sqrt(proj2 * dw2)
