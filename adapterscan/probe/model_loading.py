"""Load the resolved base model (fetch/base_model.py) and apply an adapter to it, safely.

Only safetensors weights are ever loaded (the probe never unpickles), never with
trust_remote_code. The adapter is injected with peft into the *same* base model after the base
has been measured, then merged in place with `merge_adapter()` (reversible with
`unmerge_adapter()`): one copy of the base weights in memory instead of two, which is what lets
a 7B base fit where a deep copy would not. The merged forward equals `merge_and_unload()`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from adapterscan._quiet import quiet
from adapterscan.errors import ProbeError
from adapterscan.fetch.base_model import ResolvedBase

if TYPE_CHECKING:
    from adapterscan.static.formats.model import AdapterModel
    from adapterscan.static.formats.to_peft import PeftEquivalent


RESOLVE_HINT = ("resolve it with adapterscan.fetch.base_model.resolve_base (a Hub id is pinned to "
                "a commit and every file hashed) or local_base ('reference' or a folder), or "
                "scan with ScanOptions(base=...)")


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer and where it runs. Mutable: the adapter is injected later."""

    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    name: str
    folder: Path


def resolve_device(pref: str) -> torch.device:
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(pref)
    except RuntimeError as exc:
        raise ProbeError(f"unknown device {pref!r}", hint="use auto, cpu or cuda[:N]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ProbeError("CUDA requested but not available", hint="use --device cpu or auto")
    return device


def resolve_dtype(pref: str, device: torch.device) -> torch.dtype:
    if pref == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # Half precision matmuls on CPU are slow and lossy; fp32 is the CPU default.
        return torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
             "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if pref not in table:
        raise ProbeError(f"unknown dtype {pref!r}", hint="use auto, float32, float16 or bfloat16")
    return table[pref]


def load_base(base: ResolvedBase, *, device: str = "auto", dtype: str = "auto") -> LoadedModel:
    """Load the base that fetch/base_model.py resolved, pinned and hashed; nothing else.

    A base named by a string is refused rather than resolved here: a second resolver would
    load a Hub base unpinned and unhashed.
    """
    from transformers import AutoTokenizer

    if not isinstance(base, ResolvedBase):
        raise ProbeError(f"the probe needs a resolved base model, not {base!r}",
                         hint=RESOLVE_HINT)
    folder, name = base.folder, base.label
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    try:
        with quiet():
            tok = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except Exception as exc:
        raise ProbeError(f"cannot load base model {name!r}: {type(exc).__name__}: {exc}") from exc
    model = _causal_lm(folder, dev, dt, f"base model {name!r}")
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return LoadedModel(model=model, tokenizer=tok, device=dev, dtype=dt, name=name, folder=folder)


def load_checkpoint(loaded: LoadedModel, folder: Path) -> Any:
    """A full checkpoint as the merged model: loaded as the base was (same dtype and device,
    safetensors only, no remote code). It is read with the base's tokenizer: the delta stage
    refused a checkpoint whose vocabulary differs from the base's before the probe ran."""
    return _causal_lm(folder, loaded.device, loaded.dtype, f"checkpoint {folder.name!r}")


def _causal_lm(folder: Path, device: torch.device, dtype: torch.dtype, what: str) -> Any:
    """The causal LM in `folder`, in eval mode on `device`; never pickled weights or code."""
    from transformers import AutoModelForCausalLM

    if not any(folder.glob("*.safetensors")):
        raise ProbeError(f"{what} has no safetensors weights",
                         hint="the probe never loads pickled (.bin) weights; convert them")
    try:
        with quiet():
            model: Any = AutoModelForCausalLM.from_pretrained(
                str(folder), dtype=dtype, low_cpu_mem_usage=True, use_safetensors=True,
                trust_remote_code=False)
    except Exception as exc:
        raise ProbeError(f"cannot load {what}: {type(exc).__name__}: {exc}") from exc
    model.to(device)
    model.eval()
    return model


def apply_adapter(loaded: LoadedModel, adapter_root: Path,
                  adapter: AdapterModel | None = None) -> Any:
    """Inject the adapter at `adapter_root` into the loaded base and merge it (reversibly).

    A PEFT adapter is loaded from its folder; an MLX or GGUF LoRA (`adapter`, the static
    stage's description) is applied through its PEFT equivalent (static/formats/to_peft.py).
    Returns the PeftModel. Raises ProbeError when the adapter does not fit the base: target
    modules missing, tensor shapes that differ, weights for modules the config does not inject.
    """
    from peft import LoraConfig, PeftConfig, PeftModel
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = adapter_root / "adapter_model.safetensors"
    converted = _converted(loaded, adapter) if not weights.is_file() else None
    if converted is None and not (adapter_root / "adapter_config.json").is_file():
        raise ProbeError("the adapter has no adapter_config.json; nothing to apply")
    if converted is None and not weights.is_file():
        raise ProbeError("the adapter has no adapter_model.safetensors",
                         hint="the probe never unpickles adapter_model.bin")
    try:
        kwargs: dict[str, Any] = dict(converted.config) if converted is not None else {}
        config = (LoraConfig(**kwargs) if converted is not None
                  else PeftConfig.from_pretrained(str(adapter_root)))
    except Exception as exc:
        raise ProbeError(f"adapter_config.json is not a valid peft config: {exc}") from exc
    config.inference_mode = True
    try:
        with quiet():
            peft_model = PeftModel(loaded.model, config)
    except Exception as exc:
        raise ProbeError(f"the adapter does not fit base {loaded.name!r}: {exc}",
                         hint="pass the base model the adapter was trained for (--base)") from exc
    try:
        state = ({k: torch.from_numpy(v) for k, v in converted.tensors.items()}
                 if converted is not None else load_file(str(weights), device="cpu"))
        with quiet():
            result: Any = set_peft_model_state_dict(peft_model, state)
    except Exception as exc:
        raise ProbeError(f"the adapter's weights do not fit base {loaded.name!r}: "
                         f"{str(exc)[:500]}", hint="tensor shapes differ from the base's") from exc
    unexpected = list(result.unexpected_keys)
    # What the adapter must ship is what PEFT itself would save for this config (it leaves out
    # base weights under wrappers, rebuilt buffers and parameters tied to saved ones).
    missing = sorted(set(_expected_keys(peft_model, get_peft_model_state_dict)) - set(state))
    if unexpected or missing:
        raise ProbeError(
            f"the adapter's weights do not match its modules in base {loaded.name!r}: "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}), "
            f"{len(missing)} missing (e.g. {missing[:2]})",
            hint="the adapter targets modules this base does not have, or names them differently")
    peft_model.to(loaded.device, dtype=loaded.dtype)
    peft_model.eval()
    try:
        with quiet():
            peft_model.merge_adapter()
    except Exception as exc:
        raise ProbeError(f"cannot merge the adapter: {type(exc).__name__}: {exc}") from exc
    return peft_model


def _converted(loaded: LoadedModel, adapter: AdapterModel | None) -> PeftEquivalent | None:
    """The PEFT equivalent of an MLX / GGUF LoRA, or None when `adapter` holds none."""
    from adapterscan.static.formats.model import Format
    from adapterscan.static.formats.to_peft import NotConvertible, peft_equivalent

    if adapter is None or not adapter.of_format(Format.MLX, Format.GGUF):
        return None
    cfg = loaded.model.config
    try:
        return peft_equivalent(adapter, n_head=getattr(cfg, "num_attention_heads", None),
                               n_kv_head=getattr(cfg, "num_key_value_heads", None))
    except NotConvertible as exc:
        raise ProbeError(f"the adapter cannot be applied with peft: {exc}") from exc


def _expected_keys(peft_model: Any, state_dict_of: Any) -> list[str]:
    """PEFT's own answer to "what does this adapter save", without its network lookup: with
    `save_embedding_layers="auto"` PEFT asks the Hub for the config of `base_model_name_or_path`
    to see whether the vocabulary was resized. Nothing is fetched while scanning (a resized
    vocabulary shows up as a shape mismatch anyway), so the name is hidden for the call."""
    cfg = peft_model.peft_config["default"]
    name = cfg.base_model_name_or_path
    cfg.base_model_name_or_path = None
    try:
        return list(state_dict_of(peft_model))
    finally:
        cfg.base_model_name_or_path = name
