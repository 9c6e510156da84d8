"""Checks on the values of adapter_config.json alone (no tensors): types, imports, risky options."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.config import peft_match
from adapterscan.static.config.checks import (
    BAD_VALUE,
    BIAS_TRAINED,
    DORA,
    IMPORT_ALLOWLISTED,
    IMPORT_MEGATRON_CORE,
    IMPORT_PARENT_LIBRARY,
    INIT_MODIFIES_BASE,
    LAYER_REPLICATION,
    LOCAL_PATH,
    MODULES_TO_SAVE,
    MODULES_TO_SAVE_OUTPUT,
    NO_BASE_MODEL,
    SAVE_EMBEDDING_LAYERS,
    SENSITIVE_TARGET,
    TRAINABLE_TOKEN_INDICES,
    TRAINING_MODE,
    UNKNOWN_KEY,
    UNKNOWN_PEFT_TYPE,
    UNPINNED_REVISION,
    UNUSUAL_TASK_TYPE,
)
from adapterscan.static.config.peft_keys import COMMON_KEYS, KNOWN_KEYS

TASK_TYPES = frozenset({"SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS",
                        "FEATURE_EXTRACTION"})
# Libraries whose modules AutoPeftModel may import without concern: transformers and diffusers
# (both in PEFT's default allowlist, peft/auto.py get_default_import_allowlist; PEFT writes
# `diffusers.models...` for every UNet LoRA) and peft itself (already imported by the loader).
IMPORT_ALLOWLIST = ("transformers", "diffusers", "peft")
# A plain dotted module path: identifiers only, no dunder or private segment.
_MODULE_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")
# init_lora_weights modes whose init code writes the base layer's weight
# (peft/tuners/lora/layer.py).
BASE_MODIFYING_INITS = ("pissa", "corda", "olora", "loftq", "lora_ga")
OTHER_INITS = frozenset({"gaussian", "eva", "orthogonal", "mica"})
MAX_WALK_DEPTH = 32
MAX_LISTED = 50
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
# Absolute or home-relative local paths, file:// URLs, Windows drives and UNC shares.
_LOCAL_PATH = re.compile(r"^(/[^/\s]|~[/\\]|~$|[A-Za-z]:[\\/]|\\\\|//[^/\s])|(?<![a-z])file:",
                         re.IGNORECASE)


@dataclass
class Reporter:
    """Emits under one file and remembers which checks fired (for the summary's flags)."""

    emit: Emitter
    file: str
    flags: list[str] = field(default_factory=list)

    def __call__(self, check: str, message: str, *, key: str | None = None,
                 tensor: str | None = None,
                 evidence: Mapping[str, JSONValue] | None = None) -> None:
        self.emit.emit(check, message, file=self.file, key=key, tensor=tensor, evidence=evidence)
        if check not in self.flags:
            self.flags.append(check)


def jlist(items: Iterable[JSONValue]) -> list[JSONValue]:
    """A JSON list from any iterable of JSON values (list is invariant for the type checker)."""
    return list(items)


def _is_int(v: JSONValue) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: JSONValue) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _opt(check: Callable[[JSONValue], bool]) -> Callable[[JSONValue], bool]:
    return lambda v: v is None or check(v)


def _str_list(v: JSONValue) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _int_list(v: JSONValue) -> bool:
    return isinstance(v, list) and all(_is_int(x) for x in v)


def _num_dict(v: JSONValue) -> bool:
    return isinstance(v, dict) and all(_is_num(x) for x in v.values())


def _tti(v: JSONValue) -> bool:
    if _int_list(v):
        return True
    return isinstance(v, dict) and all(_int_list(x) for x in v.values())


def _replication(v: JSONValue) -> bool:
    return isinstance(v, list) and all(
        isinstance(p, list) and len(p) == 2 and all(_is_int(x) for x in p) for p in v)


def _init(v: JSONValue) -> bool:
    if isinstance(v, bool):
        return True
    if not isinstance(v, str):
        return False
    low = v.lower()
    return low in OTHER_INITS or any(low.startswith(p) for p in BASE_MODIFYING_INITS)


_BOOL: Callable[[JSONValue], bool] = lambda v: isinstance(v, bool)  # noqa: E731
# Expected JSON types of the keys whose values drive loading (LoraConfig annotations, peft 0.21.2).
VALUE_TYPES: Mapping[str, tuple[str, Callable[[JSONValue], bool]]] = {
    "peft_type": ("string", lambda v: isinstance(v, str)),
    "task_type": ("string or null", _opt(lambda v: isinstance(v, str))),
    "base_model_name_or_path": ("string or null", _opt(lambda v: isinstance(v, str))),
    "revision": ("string or null", _opt(lambda v: isinstance(v, str))),
    "peft_version": ("string or null", _opt(lambda v: isinstance(v, str))),
    "auto_mapping": ("object or null", _opt(lambda v: isinstance(v, dict))),
    "inference_mode": ("boolean", _BOOL),
    "r": ("positive integer", lambda v: _is_int(v) and isinstance(v, int) and v > 0),
    "lora_alpha": ("number", _is_num),
    "lora_dropout": ("number in [0, 1]",
                     lambda v: _is_num(v) and isinstance(v, int | float) and 0 <= v <= 1),
    "target_modules": ("string, list of strings or null",
                       _opt(lambda v: isinstance(v, str) or _str_list(v))),
    "exclude_modules": ("string, list of strings or null",
                        _opt(lambda v: isinstance(v, str) or _str_list(v))),
    "target_parameters": ("list of strings or null", _opt(_str_list)),
    "modules_to_save": ("list of strings or null", _opt(_str_list)),
    "fan_in_fan_out": ("boolean", _BOOL),
    "use_rslora": ("boolean", _BOOL),
    "use_dora": ("boolean", _BOOL),
    "lora_bias": ("boolean", _BOOL),
    "bias": ('"none", "all" or "lora_only"', lambda v: v in ("none", "all", "lora_only")),
    "init_lora_weights": ("boolean or a known init mode", _init),
    "layers_to_transform": ("integer, list of integers or null",
                            _opt(lambda v: _is_int(v) or _int_list(v))),
    "layers_pattern": ("string, list of strings or null",
                       _opt(lambda v: isinstance(v, str) or _str_list(v))),
    "rank_pattern": ("object of numbers or null", _opt(_num_dict)),
    "alpha_pattern": ("object of numbers or null", _opt(_num_dict)),
    "megatron_config": ("object or null", _opt(lambda v: isinstance(v, dict))),
    "megatron_core": ("string or null", _opt(lambda v: isinstance(v, str))),
    "trainable_token_indices": ("list of integers, object of such lists, or null", _opt(_tti)),
    "layer_replication": ("list of [start, end] integer pairs or null", _opt(_replication)),
}


def walk_strings(value: JSONValue, path: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """(json path, string) for every string value and key, depth-bounded."""
    if depth > MAX_WALK_DEPTH:
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk_strings(v, f"{path}[{i}]", depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else k
            yield sub, k
            yield from walk_strings(v, sub, depth + 1)


def check_fields(cfg: Mapping[str, JSONValue], rep: Reporter, m: peft_match.Matcher) -> None:
    """Every check that needs only the config's values."""
    peft_type = cfg.get("peft_type")
    _types(cfg, rep)
    _peft_type_and_keys(cfg, peft_type, rep)
    _imports(cfg, rep)
    local_paths(cfg, rep)
    _save_and_targets(cfg, rep, m)
    _options(cfg, rep)


def _mask_dict(v: JSONValue) -> bool:
    return isinstance(v, dict) and all(
        isinstance(x, list) and all(isinstance(b, bool) for b in x) for x in v.values())


def _oft_block_rank(cfg: Mapping[str, JSONValue]) -> bool:
    """OFT sizes its blocks by r (how many) or oft_block_size (how wide), one of them 0: PEFT's
    OFTConfig defaults are r=0, oft_block_size=32, so r=0 is valid there."""
    r, size = cfg.get("r"), cfg.get("oft_block_size")
    return (cfg.get("peft_type") == "OFT" and _is_int(r) and _is_int(size)
            and isinstance(r, int) and isinstance(size, int) and min(r, size) == 0
            and max(r, size) > 0)


def _types(cfg: Mapping[str, JSONValue], rep: Reporter) -> None:
    for key, (expected, ok) in VALUE_TYPES.items():
        if key == "r" and _oft_block_rank(cfg):
            continue
        if key == "rank_pattern" and cfg.get("peft_type") == "ADALORA":
            # AdaLoRA's rank_pattern is the kept-rank mask of each module's lora_E.
            expected, ok = "object of lists of booleans or null", _opt(_mask_dict)
        if key in cfg and not ok(cfg[key]):
            rep(BAD_VALUE,
                f"{key} must be {expected}, got {_short(cfg[key])}", key=key,
                evidence={"key": key, "expected": expected, "value": _short(cfg[key])})


def _short(v: JSONValue, limit: int = 200) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def _peft_type_and_keys(cfg: Mapping[str, JSONValue], peft_type: JSONValue,
                        rep: Reporter) -> None:
    if not isinstance(peft_type, str) or peft_type not in KNOWN_KEYS:
        rep(UNKNOWN_PEFT_TYPE,
            f"peft_type {_short(peft_type)} is not a PEFT adapter type", key="peft_type",
            evidence={"peft_type": _short(peft_type), "known": jlist(sorted(KNOWN_KEYS))})
        known = COMMON_KEYS
    else:
        known = COMMON_KEYS | KNOWN_KEYS[peft_type]
    unknown = sorted(k for k in cfg if k not in known)
    if unknown and isinstance(peft_type, str) and peft_type in KNOWN_KEYS:
        rep(UNKNOWN_KEY,
            f"{len(unknown)} key(s) unknown to {peft_type} configs, dropped by PEFT on load: "
            + ", ".join(unknown[:10]),
            evidence={"keys": jlist(unknown[:MAX_LISTED]), "count": len(unknown),
                      "values": {k: _short(cfg[k], 120) for k in unknown[:MAX_LISTED]}})
    task = cfg.get("task_type")
    if isinstance(task, str) and task not in TASK_TYPES:
        rep(UNUSUAL_TASK_TYPE, f"task_type {task!r} is not a PEFT task type",
            key="task_type", evidence={"task_type": task, "known": jlist(sorted(TASK_TYPES))})


def _allowlisted(name: str) -> bool:
    return _MODULE_PATH.fullmatch(name) is not None and any(
        name == a or name.startswith(f"{a}.") for a in IMPORT_ALLOWLIST)


def _imports(cfg: Mapping[str, JSONValue], rep: Reporter) -> None:
    auto = cfg.get("auto_mapping")
    if isinstance(auto, dict):
        lib = auto.get("parent_library")
        cls = auto.get("base_model_class")
        ev: dict[str, JSONValue] = {"parent_library": _short(lib),
                                    "base_model_class": _short(cls)}
        if isinstance(lib, str) and _allowlisted(lib):
            rep(IMPORT_ALLOWLISTED,
                f"AutoPeftModel imports {lib!r} (inside PEFT's default allowlist)",
                key="auto_mapping.parent_library", evidence=ev)
        elif lib is not None:
            rep(IMPORT_PARENT_LIBRARY,
                f"auto_mapping.parent_library {_short(lib)} is passed to importlib.import_module"
                " by AutoPeftModel.from_pretrained", key="auto_mapping.parent_library",
                evidence=ev)
    core = cfg.get("megatron_core")
    if core is not None and core != "megatron.core":
        rep(IMPORT_MEGATRON_CORE,
            f"megatron_core {_short(core)} is passed to importlib.import_module when "
            "megatron_config is set", key="megatron_core",
            evidence={"megatron_core": _short(core),
                      "megatron_config_set": bool(cfg.get("megatron_config"))})
    elif core == "megatron.core" and cfg.get("megatron_config"):
        rep(IMPORT_ALLOWLISTED,
            "megatron_config is set: PEFT imports 'megatron.core' to build parallel LoRA layers",
            key="megatron_core", evidence={"megatron_core": core})


def local_paths(cfg: Mapping[str, JSONValue], rep: Reporter) -> None:
    hits: list[JSONValue] = []
    for path, text in walk_strings(dict(cfg)):
        if _LOCAL_PATH.search(text[:4096]):
            hits.append({"key": path, "value": _short(text, 200)})
    if hits:
        first = hits[0]
        key = first["key"] if isinstance(first, dict) and isinstance(first["key"], str) else None
        rep(LOCAL_PATH,
            f"{len(hits)} value(s) name a local path or file URL (first at {key})", key=key,
            evidence={"paths": hits[:MAX_LISTED], "count": len(hits)})


def _save_and_targets(cfg: Mapping[str, JSONValue], rep: Reporter, m: peft_match.Matcher) -> None:
    mts = cfg.get("modules_to_save")
    if isinstance(mts, list) and mts:
        names = [str(x) for x in mts]
        output = [n for n in names if peft_match.module_kind(n) in ("embedding", "head")]
        if output:
            rep(MODULES_TO_SAVE_OUTPUT,
                "modules_to_save ships full trained copies of output/embedding layers: "
                + ", ".join(output[:10]), key="modules_to_save",
                evidence={"modules": jlist(output[:MAX_LISTED])})
        # The task type's own head (a new, randomly initialised layer) is AS336, from the tensors.
        heads = peft_match.task_heads(cfg)
        rest = [n for n in names if n not in output and n not in heads]
        if rest:
            rep(MODULES_TO_SAVE,
                "modules_to_save ships full trained copies of: " + ", ".join(rest[:10]),
                key="modules_to_save", evidence={"modules": jlist(rest[:MAX_LISTED])})
    sel = cfg.get("save_embedding_layers")
    if sel is True or (isinstance(sel, str) and sel not in ("", "false", "False")):
        rep(SAVE_EMBEDDING_LAYERS,
            f"save_embedding_layers is {sel!r}: the adapter ships full embedding/lm_head weights",
            key="save_embedding_layers", evidence={"save_embedding_layers": sel})
    targets = cfg.get("target_modules")
    hits: dict[str, str] = {}
    if isinstance(targets, list):
        for t in targets:
            kind = peft_match.module_kind(t) if isinstance(t, str) else None
            if kind and isinstance(t, str):
                hits[t] = kind
    elif isinstance(targets, str) and targets != "all-linear":
        try:
            for name in peft_match.matching_names(m, targets, peft_match.PROBE_MODULES):
                kind = peft_match.module_kind(name)
                if kind:
                    hits[name] = kind
        except peft_match.PatternError as exc:
            rep(BAD_VALUE, f"target_modules pattern: {exc}",
                key="target_modules", evidence={"pattern": _short(targets)})
    if hits:
        rep(SENSITIVE_TARGET,
            "target_modules adapts " + ", ".join(f"{k} ({v})" for k, v in list(hits.items())[:10]),
            key="target_modules", evidence={"modules": dict(list(hits.items())[:MAX_LISTED])})


def _options(cfg: Mapping[str, JSONValue], rep: Reporter) -> None:
    tti = cfg.get("trainable_token_indices")
    if tti:
        ids: dict[str, JSONValue] = {}
        if isinstance(tti, list):
            ids["embedding"] = tti[:MAX_LISTED]
        elif isinstance(tti, dict):
            ids = {str(k): v[:MAX_LISTED] if isinstance(v, list) else v for k, v in tti.items()}
        rep(TRAINABLE_TOKEN_INDICES,
            "trainable_token_indices rewrites individual embedding rows (possible trigger "
            f"tokens): {_short(tti, 120)}", key="trainable_token_indices",
            evidence={"token_ids": ids})
    rep_ = cfg.get("layer_replication")
    if rep_:
        rep(LAYER_REPLICATION,
            f"layer_replication rebuilds the base model's layer stack: {_short(rep_, 120)}",
            key="layer_replication", evidence={"layer_replication": rep_})
    init = cfg.get("init_lora_weights")
    if isinstance(init, str) and any(init.lower().startswith(p) for p in BASE_MODIFYING_INITS):
        rep(INIT_MODIFIES_BASE,
            f"init_lora_weights={init!r} rewrites the base layer's weights when the adapter is "
            "created", key="init_lora_weights", evidence={"init_lora_weights": init})
    base = cfg.get("base_model_name_or_path")
    if base is None or base == "":
        rep(NO_BASE_MODEL, "base_model_name_or_path is missing or empty",
            key="base_model_name_or_path")
    rev = cfg.get("revision")
    if isinstance(base, str) and base and not (isinstance(rev, str) and _HEX40.match(rev)):
        rep(UNPINNED_REVISION,
            f"base model revision is not pinned to a commit ({_short(rev)})", key="revision",
            evidence={"revision": _short(rev)})
    if cfg.get("inference_mode") is False:
        rep(TRAINING_MODE, "inference_mode is false", key="inference_mode")
    if cfg.get("use_dora") is True:
        rep(DORA, "use_dora is true (DoRA magnitude vectors rescale weights)",
            key="use_dora")
    bias = cfg.get("bias")
    if (isinstance(bias, str) and bias in ("all", "lora_only")) or cfg.get("lora_bias") is True:
        rep(BIAS_TRAINED,
            f"bias={bias!r}, lora_bias={cfg.get('lora_bias')!r}: bias terms are full parameters "
            "loaded into the base model", key="bias",
            evidence={"bias": _short(bias), "lora_bias": _short(cfg.get("lora_bias"))})
