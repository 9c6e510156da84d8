"""One description of an adapter, whatever its file format (PEFT, diffusers, kohya, LyCORIS,
MLX, GGUF): the weight analysis, the config checks and the probe all consume this.

A module is one adapted layer: its algorithm (LoRA, LoHa, LoKr, (IA)3, full diff), its factors
by role, its scale as the format's loader computes it, and where it sits in the base model.
Factors are references into a validated container (safetensors header or GGUF layout): nothing
is read until an analyzer asks, and every read is bounded by that layout.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapterscan.static.formats.tensor_reader import RawTensor, read_tensor
from adapterscan.static.layout import DataLayout, TensorInfo


class Format(enum.Enum):
    PEFT = "peft"
    DIFFUSERS = "diffusers"
    KOHYA = "kohya"  # sd-scripts naming; LyCORIS algorithms use the same naming
    MLX = "mlx"
    GGUF = "gguf"


class Algorithm(enum.Enum):
    LORA = "lora"  # ΔW = s·B·A
    LOHA = "loha"  # ΔW = s·(B1·A1) ∘ (B2·A2)
    LOKR = "lokr"  # ΔW = s·kron(W1, W2), each side full or low-rank
    IA3 = "ia3"  # W' = W·diag(l) (or diag(l)·W): a scaling vector
    FULL = "full"  # ΔW stored whole (LyCORIS full/diff)


class Family(enum.Enum):
    """What kind of model the adapter modifies (decides whether the behavioral probe applies)."""

    CAUSAL_LM = "causal-lm"
    DIFFUSION = "diffusion"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TensorRef:
    file: str  # relative to the scanned root
    path: Path
    header: DataLayout
    info: TensorInfo

    def read(self) -> RawTensor:
        return read_tensor(self.path, self.header, self.info)


@dataclass(frozen=True)
class Scale:
    value: float
    r: int
    alpha: float
    source: str  # "config", "alpha tensor", "mlx config", "gguf adapter.lora.alpha", "default"...
    # The stored tensor the alpha came from (kohya `.alpha`), named in findings about it.
    tensor: TensorRef | None = None


_LAYER = re.compile(r"\.(?:layers|h|layer|blocks|block|blk)\.(\d+)\.")
# kohya names flatten the module path with "_": `..._layers_3_self_attn_q_proj`.
_KOHYA_LAYER = re.compile(r"_(?:layers|blocks|double_blocks|single_blocks)_(\d+)_")
_NUMBER = re.compile(r"^\d+$")


@dataclass(frozen=True)
class AdapterModule:
    name: str  # the key prefix in the file (`base_model.model.model.layers.0.self_attn.q_proj`)
    algorithm: Algorithm
    # Factors by role. LoRA: A (r×in), B (out×r). LoHa: w1a, w1b, w2a, w2b (+ t1, t2 Tucker
    # cores). LoKr: w1 or w1a+w1b, w2 or w2a+w2b (+ t2). IA3: vector. FULL: diff (+ diff_b).
    # LoRA Tucker (LyCORIS conv): mid.
    factors: Mapping[str, TensorRef]
    scale: Scale
    target: str  # the module path in the base model's naming, as far as the format tells
    embedding: bool = False
    # MLX stores lora_a as Aᵀ [in, r] and lora_b as Bᵀ [r, out].
    transposed: bool = False
    bias: TensorRef | None = None  # PEFT lora_B.bias, LyCORIS diff_b
    magnitude: TensorRef | None = None  # DoRA: PEFT lora_magnitude_vector, kohya dora_scale
    component: str | None = None  # unet, text_encoder, transformer... (diffusion LoRAs)
    ia3_on_input: bool = False  # IA3: the vector scales the input features (columns of W)
    # IA3 gain = offset + v: PEFT stores the gain itself (offset 0, initialised to 1); LyCORIS
    # stores the change (W·(1 + v), initialised to 0; lycoris/modules/ia3.py make_weight).
    ia3_gain_offset: float = 0.0
    # llama.cpp permutes the rows of attn_q / attn_k (and so lora_b) for its RoPE layout.
    permuted_rows: bool = False
    # Why the factors cannot be analysed (a missing half, inner dimensions that disagree...).
    problem: str | None = None

    @property
    def a(self) -> TensorRef | None:
        return self.factors.get("A")

    @property
    def b(self) -> TensorRef | None:
        return self.factors.get("B")

    @property
    def first(self) -> TensorRef:
        """A tensor of the module to point findings at."""
        return next(iter(self.factors.values()))

    @property
    def file(self) -> str:
        return self.first.file

    @property
    def module_type(self) -> str:
        """The layer kind (`q_proj`, `attn1_to_q`, `attn_q`): modules are compared by kind."""
        if "." in self.target:
            return self.target.rsplit(".", 1)[-1]
        parts = self.target.split("_")
        if parts and _NUMBER.match(parts[-1]):  # to_out_0: keep the index with its module
            tail, parts = [parts[-1]], parts[:-1]
        else:
            tail = []
        idx = max((i for i, p in enumerate(parts) if _NUMBER.match(p)), default=-1)
        return "_".join(parts[idx + 1:] + tail) or self.target

    @property
    def layer(self) -> int | None:
        if self.component is not None:  # diffusion blocks are not a layer stack
            return None
        m = _LAYER.search("." + self.target + ".")
        if m is None:
            m = _KOHYA_LAYER.search("_" + self.target + "_")
        return int(m.group(1)) if m else None

    def read_a(self) -> RawTensor:
        """A as r×in (conv kernels flattened into in), whatever the stored orientation."""
        assert self.a is not None
        t = self.a.read()
        return t.transposed() if self.transposed else t

    def read_b(self) -> RawTensor:
        assert self.b is not None
        t = self.b.read()
        return t.transposed() if self.transposed else t

    def a_shape(self) -> tuple[int, ...]:
        assert self.a is not None
        s = self.a.info.shape
        return tuple(reversed(s)) if self.transposed else s

    def b_shape(self) -> tuple[int, ...]:
        assert self.b is not None
        s = self.b.info.shape
        return tuple(reversed(s)) if self.transposed else s


@dataclass(frozen=True)
class AdapterFile:
    """What one weights file holds, as its format's loader sees it."""

    path: str
    format: Format
    family: Family
    modules: tuple[AdapterModule, ...]
    # Tensors that are not part of a module: PEFT full weights, DoRA magnitudes, trainable
    # tokens (analysed by their own checks), or tensors this format's loader does not know.
    others: tuple[TensorRef, ...] = ()
    unrecognised: tuple[TensorRef, ...] = ()
    # Algorithms recognised but not analysed by this build (OFT, BOFT, GLoRA...): tensor counts.
    unsupported: Mapping[str, int] = field(default_factory=dict)
    base_model: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    config: str | None = None  # the config file that decided the scale (PEFT, MLX)
    note: str = ""  # how the format was recognised

    def summary(self) -> dict[str, object]:
        algos: dict[str, int] = {}
        for m in self.modules:
            algos[m.algorithm.value] = algos.get(m.algorithm.value, 0) + 1
        return {"file": self.path, "format": self.format.value, "family": self.family.value,
                "modules": len(self.modules), "algorithms": algos,
                "other_tensors": len(self.others), "unrecognised_tensors": len(self.unrecognised),
                "base_model": self.base_model, "config": self.config, "recognised_by": self.note}


@dataclass(frozen=True)
class AdapterModel:
    """Every adapter file of a scanned source, one description each."""

    files: tuple[AdapterFile, ...] = ()

    @property
    def modules(self) -> tuple[AdapterModule, ...]:
        return tuple(m for f in self.files for m in f.modules)

    @property
    def others(self) -> tuple[TensorRef, ...]:
        return tuple(t for f in self.files for t in f.others)

    def of_format(self, *formats: Format) -> tuple[AdapterFile, ...]:
        return tuple(f for f in self.files if f.format in formats)
