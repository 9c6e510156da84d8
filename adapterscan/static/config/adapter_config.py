"""adapter_config.json analyzer: a bounded, strict read, then value checks and config-vs-weights.

Does not import peft (the static scan must not pay for torch): PEFT's key table and targeting
rules are re-implemented in config/peft_keys.py and config/peft_match.py. Rules AS301-AS334.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.config import peft_match
from adapterscan.static.config.checks import DUPLICATE_KEY, INVALID, MISSING
from adapterscan.static.config.fields import (
    MAX_LISTED,
    Reporter,
    check_fields,
    jlist,
)
from adapterscan.static.config.peft_names import PREFIX, parse_lora_key
from adapterscan.static.config.prompt_learning import PROMPT_TYPES, check_prompt_tensors
from adapterscan.static.config.tensors import check_weights
from adapterscan.static.formats.readers import is_mlx_config
from adapterscan.static.formats.torch_archive import BIN_NAMES
from adapterscan.static.layout import TensorTable
from adapterscan.static.limits import StaticLimits
from adapterscan.static.model import Inventory

CONFIG_NAME = "adapter_config.json"
WEIGHT_NAMES = BIN_NAMES | {"adapter_model.safetensors"}
# Config-vs-tensor checks (targets, orphans, full tensors; for LoRA also pairs, ranks, decoys);
# other types get value checks only.
TENSOR_CHECKED_TYPES = frozenset({"LORA", "ADALORA", "LOHA", "LOKR", "IA3"})
MAX_SUMMARY_JSON = 2000


@dataclass(frozen=True)
class AdapterConfigResult:
    config: Mapping[str, JSONValue]
    summary: JSONValue
    # Every adapter_config.json that parsed, by path (PEFT and MLX ones): the format readers
    # take each weights file's scale from the config beside it.
    configs: Mapping[str, Mapping[str, JSONValue]] = field(default_factory=dict)
    # Weights files of prompt-learning adapters whose one tensor matched its config: read, though
    # they hold no adapter module for the weight statistics.
    prompt_files: frozenset[str] = frozenset()


class _ConfigError(Exception):
    def __init__(self, message: str, evidence: Mapping[str, JSONValue]) -> None:
        super().__init__(message)
        self.evidence = evidence


def _no_constants(name: str) -> JSONValue:
    # Python's json accepts NaN/Infinity; strict parsers reject them: a parser differential.
    raise ValueError(f"non-standard JSON constant {name}")


def parse_config(data: bytes) -> tuple[dict[str, JSONValue], list[str]]:
    """Strictly parse config bytes; returns the object (last duplicate wins, as in PEFT) and
    the duplicated keys. Raises _ConfigError for anything PEFT and other parsers could disagree on
    or could not load."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _ConfigError(f"not UTF-8 (byte {exc.start})", {"offset": exc.start}) from None
    dups: list[str] = []

    def pairs(items: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {}
        for k, v in items:
            if k in out:
                dups.append(k)
            out[k] = v
        return out

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise _ConfigError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                           {"offset": exc.pos}) from None
    except (ValueError, RecursionError) as exc:
        raise _ConfigError(f"invalid JSON: {type(exc).__name__}: {str(exc)[:200]}", {}) from None
    if not isinstance(value, dict):
        raise _ConfigError(f"top level is {type(value).__name__}, not an object",
                           {"type": type(value).__name__})
    return value, dups


def _read(root: Path, rel: str, emit: Emitter,
          limits: StaticLimits) -> dict[str, JSONValue] | None:
    path = root / rel
    if path.is_symlink() or not path.is_file():
        emit.skip(rel, "adapter_config.json is not a regular file (see inventory findings)")
        return None
    with path.open("rb") as fh:
        # read(n) allocates n bytes up front: ask for no more than the file holds (4 MiB of
        # transient memory per scan otherwise), still one byte past the cap to detect it.
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(min(size, limits.max_json_bytes) + 1)
    if len(data) > limits.max_json_bytes:
        emit.emit(INVALID,
                  f"larger than the {limits.max_json_bytes}-byte cap for JSON files", file=rel,
                  evidence={"cap": limits.max_json_bytes})
        emit.skip(rel, "adapter_config.json over the JSON size cap: not analysed")
        return None
    try:
        cfg, dups = parse_config(data)
    except _ConfigError as exc:
        emit.emit(INVALID, str(exc), file=rel, evidence=dict(exc.evidence))
        return None
    if dups:
        emit.emit(DUPLICATE_KEY,
                  f"duplicate key(s) {sorted(set(dups))[:10]}: parsers disagree on which value "
                  "wins (Python keeps the last)", file=rel,
                  evidence={"keys": jlist(sorted(set(dups))[:MAX_LISTED]), "count": len(dups)})
    return cfg


def _bounded(value: JSONValue) -> JSONValue:
    text = json.dumps(value)
    return value if len(text) <= MAX_SUMMARY_JSON else text[:MAX_SUMMARY_JSON] + "..."


def _weight_dirs(inventory: Inventory, headers: Mapping[str, TensorTable]) -> dict[str, str]:
    """folder -> a representative adapter weights file in it."""
    found: dict[str, str] = {}
    for item in inventory.items:
        if posixpath.basename(item.path) in WEIGHT_NAMES:
            found.setdefault(posixpath.dirname(item.path), item.path)
    for path, header in sorted(headers.items()):
        # PEFT's own prefix: diffusers and kohya files need no adapter_config.json.
        if any(t.name.startswith(PREFIX) and parse_lora_key(t.name) for t in header.tensors):
            found.setdefault(posixpath.dirname(path), path)
    return found


def _analyze_one(root: Path, rel: str, cfg: dict[str, JSONValue], inventory: Inventory,
                 headers: Mapping[str, TensorTable], emit: Emitter, limits: StaticLimits,
                 m: peft_match.Matcher, prompt_files: set[str]) -> dict[str, JSONValue]:
    flags: list[str] = []
    check_fields(cfg, Reporter(emit, rel, flags), m)
    folder = posixpath.dirname(rel)
    local = [h for p, h in sorted(headers.items()) if posixpath.dirname(p) == folder]
    summary: dict[str, JSONValue] = {
        "file": rel, "peft_type": _bounded(cfg.get("peft_type")),
        "task_type": _bounded(cfg.get("task_type")),
        "base_model": _bounded(cfg.get("base_model_name_or_path")),
        "revision": _bounded(cfg.get("revision")), "r": _bounded(cfg.get("r")),
        "lora_alpha": _bounded(cfg.get("lora_alpha")),
        "use_rslora": _bounded(cfg.get("use_rslora")),
        "target_modules": _bounded(cfg.get("target_modules")),
        "modules_to_save": _bounded(cfg.get("modules_to_save")),
        "weights_files": [h.path for h in local],
    }
    peft_type = cfg.get("peft_type")
    if isinstance(peft_type, str) and peft_type in TENSOR_CHECKED_TYPES:
        summary.update(check_weights(cfg, local, root, emit, flags, m, limits, rel))
        weights = [i.path for i in inventory.items if posixpath.dirname(i.path) == folder
                   and posixpath.basename(i.path) in WEIGHT_NAMES]
        if not local and weights:
            # Weights that failed validation (their own skip says why) or were not fetched.
            emit.skip(rel, f"no validated tensor table for {weights[0]}: config and "
                      "tensors were not compared")
    elif isinstance(peft_type, str) and peft_type in PROMPT_TYPES and local:
        checked = check_prompt_tensors(cfg, local, rel, emit)
        summary.update(checked.summary)
        prompt_files.update(checked.read)
    elif local:
        emit.skip(rel, f"config-vs-tensor checks cover {sorted(TENSOR_CHECKED_TYPES)} only; "
                  f"peft_type {str(cfg.get('peft_type'))[:40]!r} was checked on its values only")
    summary["flags"] = list(flags)
    return summary


def analyze_adapter_config(root: Path, inventory: Inventory,
                           headers: Mapping[str, TensorTable], emit: Emitter,
                           limits: StaticLimits) -> AdapterConfigResult | None:
    configs = sorted(i.path for i in inventory.items if posixpath.basename(i.path) == CONFIG_NAME)
    config_dirs = {posixpath.dirname(c) for c in configs}
    for folder, weights in sorted(_weight_dirs(inventory, headers).items()):
        if folder not in config_dirs:
            emit.emit(MISSING,
                      f"adapter weights without an adapter_config.json in "
                      f"{folder or 'the repository root'}", file=weights,
                      evidence={"folder": folder, "weights": weights})
    m = peft_match.Matcher()
    parsed: dict[str, dict[str, JSONValue]] = {}
    summaries: dict[str, JSONValue] = {}
    prompt_files: set[str] = set()
    for rel in configs:
        cfg = _read(root, rel, emit, limits)
        if cfg is None:
            continue
        parsed[rel] = cfg
        if is_mlx_config(cfg):  # mlx-lm's training arguments: checked with its tensors later
            summaries[rel] = {"file": rel, "format": "mlx",
                              "fine_tune_type": _bounded(cfg.get("fine_tune_type")),
                              "lora_parameters": _bounded(cfg.get("lora_parameters")),
                              "model": _bounded(cfg.get("model"))}
            continue
        summaries[rel] = _analyze_one(root, rel, cfg, inventory, headers, emit, limits, m,
                                      prompt_files)
    if not parsed:
        return None
    primary = CONFIG_NAME if CONFIG_NAME in parsed else next(iter(parsed))
    summary: JSONValue = summaries[primary] if len(summaries) == 1 else {
        "primary": primary, "adapters": summaries}
    return AdapterConfigResult(config=parsed[primary], summary=summary, configs=parsed,
                               prompt_files=frozenset(prompt_files))
