"""adapter_config.json against the adapter's safetensors: targets, ranks, scales, shapes, decoys.

Each weights file is read as PEFT reads it (formats/readers.py `read_peft`: the same grouping of
tensors into modules the weight analysis gets) and each module's r, alpha and scale come from
formats/scales.py `peft_rank`. Non-LoRA tensors are full weights: PEFT loads its state dict with
strict=False, so a full tensor whose name exists in the base model overwrites that weight and one
that does not is silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.config import peft_match
from adapterscan.static.config.checks import (
    DTYPE_MIXTURE,
    EXTREME_SCALE,
    FAN_IN_FAN_OUT,
    FULL_RANK,
    FULL_WEIGHT_TENSOR,
    INCOMPLETE_PAIR,
    NESTED_PREFIX,
    ORPHAN_TENSOR,
    RANK_MISMATCH,
    SHAPE_MISMATCH,
    TARGET_WITHOUT_TENSORS,
    TASK_HEAD,
    ZERO_LORA_B,
)
from adapterscan.static.config.fields import MAX_LISTED, Reporter, jlist
from adapterscan.static.config.peft_names import PREFIX, parse_lora_key
from adapterscan.static.formats.model import TensorRef
from adapterscan.static.formats.names import peft_name
from adapterscan.static.formats.readers import read_peft
from adapterscan.static.formats.scales import peft_rank
from adapterscan.static.layout import TensorTable
from adapterscan.static.limits import StaticLimits

# Sign-bit masks: -0.0 is zero too. Unlisted dtypes are compared bytewise.
_ZERO_VIEW: Mapping[str, tuple[type[np.unsignedinteger], int]] = {
    "F16": (np.uint16, 0x7FFF), "BF16": (np.uint16, 0x7FFF), "F32": (np.uint32, 0x7FFFFFFF),
    "F64": (np.uint64, 0x7FFFFFFFFFFFFFFF), "F8_E4M3": (np.uint8, 0x7F),
    "F8_E5M2": (np.uint8, 0x7F),
}
MAX_B_BYTES = 512 * 1024 * 1024  # total lora_B bytes read for the decoy check
FIRST_READ = 4096
CONV1D_NAMES = frozenset({"c_attn", "c_proj", "c_fc", "c_attn_q", "q_attn"})


@dataclass
class Module:
    name: str
    prefixed: bool
    parts: dict[str, TensorRef] = field(default_factory=dict)


def _strip(name: str) -> tuple[str, bool]:
    return (name[len(PREFIX):], True) if name.startswith(PREFIX) else (name, False)


@dataclass
class _State:
    cfg: Mapping[str, JSONValue]
    reps: dict[str, Reporter]
    m: peft_match.Matcher
    emit: Emitter
    modules: dict[str, Module] = field(default_factory=dict)
    full: list[tuple[str, TensorRef]] = field(default_factory=list)


def check_weights(cfg: Mapping[str, JSONValue], headers: Sequence[TensorTable], root: Path,
                  emit: Emitter, flags: list[str], m: peft_match.Matcher, limits: StaticLimits,
                  config_file: str) -> dict[str, JSONValue]:
    """All config-vs-tensor checks for one adapter folder; returns the summary additions."""
    st = _State(cfg, {h.path: Reporter(emit, h.path, flags) for h in headers}, m, emit)
    lora = cfg.get("peft_type") == "LORA"
    for module, part, ref in _placed(cfg, headers, root, m, config_file):
        if part is None:
            st.full.append((ref.info.name, ref))
            continue
        name, prefixed = _strip(module)
        if part == "foreign":  # another tuner's tensor: PEFT ignores it, like an orphan
            prefixed = False
        entry = st.modules.setdefault(f"{prefixed}:{name}", Module(name, prefixed))
        entry.parts[part] = ref
    config_rep = Reporter(emit, config_file, flags)
    summary: dict[str, JSONValue] = {}
    if not headers:  # nothing to compare: only the config's own scale
        summary.update(_pairs_shapes_ranks(st, config_rep))
        return summary
    summary["adapted_modules"] = len(st.modules)
    nested = _nested_prefix(st, config_file, lora)
    summary["full_tensors"] = _full_tensors(st)
    if nested:  # PEFT loads none of the adapter tensors: targets, ranks and zeros are moot
        summary["nested_prefix"] = nested
        return summary
    _orphans_and_targets(st, config_rep, config_file)
    _dtypes(st)
    _fan_in_fan_out(st, config_rep)
    if lora:  # pairing, ranks and the decoy check follow LoRA's A/B layout
        summary.update(_pairs_shapes_ranks(st, config_rep))
        summary["zero_lora_b"] = _zero_b(st, limits)
    return summary


def _nested_prefix(st: _State, config_file: str, lora: bool) -> int:
    """Tensors saved from a PeftModel wrapped in another PeftModel carry `base_model.model.`
    twice or more. PEFT's load (set_peft_model_state_dict, strict=False) matches names
    literally against a model built on the base, so every such tensor is ignored: when all
    adapter tensors are nested, loading the adapter changes nothing (one low finding, which
    carries what the orphan, target and rank checks say of the names without the repeated
    prefix). A mix of nested and loadable names is left to the orphan check (AS323)."""
    mods = list(st.modules.values())
    if not mods or not all(m.prefixed and m.name.startswith(PREFIX) for m in mods):
        return 0
    names = [loc.info.name for m in mods for loc in m.parts.values()]
    file = next(iter(mods[0].parts.values())).file
    depth, rest = 0, names[0]
    while rest.startswith(PREFIX):
        depth, rest = depth + 1, rest[len(PREFIX):]
    denested = _denested_checks(st, config_file, lora)
    said = sorted({str(f["rule"]) for f in denested
                   if isinstance(f, dict) and f.get("rule") is not None})
    st.reps[file](NESTED_PREFIX,
                  f"all {len(names)} adapter tensor(s) are named under a repeated "
                  f"'{PREFIX}' prefix ({depth} levels: saved from a PeftModel wrapped in "
                  "another): PEFT matches none of them to the model, so loading this adapter "
                  "changes nothing"
                  + (f"; read without the repeated prefix they would raise {', '.join(said)}"
                     if said else "; read without the repeated prefix they match the config"),
                  tensor=names[0],
                  evidence={"tensors": jlist(names[:MAX_LISTED]), "count": len(names),
                            "prefix_levels": depth, "denested_findings": denested})
    return len(names)


def _denested_checks(st: _State, config_file: str, lora: bool) -> list[JSONValue]:
    """The orphan, target and (LoRA) pairing and rank checks run on the module names with every
    repeated prefix removed, into a side emitter: what the config says of the tensors a user
    would get by fixing the names. Reported inside AS337 (loading as saved ignores them all, so
    none of these has a consequence at load)."""
    side = Emitter(st.emit.ruleset)
    inner = _State(st.cfg, {f: Reporter(side, f) for f in st.reps}, st.m, side)
    for mod in st.modules.values():
        name, depth = mod.name, 1
        while name.startswith(PREFIX):
            name, depth = name[len(PREFIX):], depth + 1
        # Inner and outer adapters of one module are saved side by side: keep them apart.
        inner.modules.setdefault(f"{depth}:{name}", Module(name, True)).parts.update(mod.parts)
    config_rep = Reporter(side, config_file)
    _orphans_and_targets(inner, config_rep, config_file)
    if lora:
        _pairs_shapes_ranks(inner, config_rep)
    out: list[JSONValue] = [{"rule": f.rule_id, "message": f.message}
                            for f in side.findings[:MAX_LISTED]]
    out += [{"rule": None, "message": f"not checked: {k.reason}"} for k in side.skipped]
    return out


_TUNER_ROLES = {"LOHA": frozenset({"w1a", "w1b", "w2a", "w2b", "t1", "t2"}),
                "LOKR": frozenset({"k1", "k1a", "k1b", "k2", "k2a", "k2b", "kt2"}),
                "IA3": frozenset({"ia3"}), "ADALORA": frozenset({"A", "B", "E"})}
# LoRA roles (formats/names.py) -> PEFT's parameter names, the keys of Module.parts.
_LORA_PARTS = {"A": "lora_A", "B": "lora_B", "magnitude": "lora_magnitude_vector",
               "bias": "lora_B.bias"}


def _part(cfg: Mapping[str, JSONValue], role: str, embedding: bool) -> str | None:
    """The key of a tensor in its module for this config's tuner; None for a full tensor (a LoRA
    config loads no other tuner's tensors), "foreign" for another tuner's tensor."""
    if cfg.get("peft_type") == "LORA":
        part = _LORA_PARTS.get(role)
        return f"lora_embedding_{role}" if part and embedding and role in ("A", "B") else part
    return role if role in _TUNER_ROLES.get(str(cfg.get("peft_type")), frozenset()) \
        else "foreign"


def _leftover(cfg: Mapping[str, JSONValue], name: str) -> tuple[str, str | None]:
    if cfg.get("peft_type") == "LORA":
        lora = parse_lora_key(name)
        if lora is None:
            return "", None
        return lora[0], lora[1] if lora[2] == "weight" else f"{lora[1]}.{lora[2]}"
    parsed = peft_name(name)
    return (parsed[0], _part(cfg, parsed[1], parsed[2])) if parsed else ("", None)


def _placed(cfg: Mapping[str, JSONValue], headers: Sequence[TensorTable], root: Path,
            m: peft_match.Matcher, config_file: str) -> list[tuple[str, str | None, TensorRef]]:
    """(module, part, tensor) for every tensor, in header order, from the adapter model: each
    file as PEFT reads it (formats/readers.py groups its tensors into modules once)."""
    placed: list[tuple[tuple[int, int], str, str | None, TensorRef]] = []
    for i, h in enumerate(headers):
        order = {id(info): n for n, info in enumerate(h.tensors)}
        f = read_peft(root, h.path, h, cfg, config_file, m)
        for mod in f.modules:
            roles = [*mod.factors.items(), *([("bias", mod.bias)] if mod.bias else [])]
            placed += [((i, order[id(ref.info)]), mod.name, _part(cfg, role, mod.embedding), ref)
                       for role, ref in roles]
        # Tensors in no module (DoRA magnitudes, a second copy of a factor, parts of modules
        # without factors) keep PEFT's name for their part; the rest are full weights.
        for ref in (*f.others, *f.unrecognised):
            module, part = _leftover(cfg, ref.info.name)
            placed.append(((i, order[id(ref.info)]), module, part, ref))
    placed.sort(key=lambda p: p[0])
    return [(module, part, ref) for _, module, part, ref in placed]


def _orphans_and_targets(st: _State, config_rep: Reporter, config_file: str) -> None:
    cfg = st.cfg
    if cfg.get("target_modules") is None and cfg.get("target_parameters") is None:
        if st.modules:
            st.emit.skip(config_file, "target_modules is null (PEFT then picks targets by model "
                         "type): tensors were not matched against targets")
        return
    orphans: dict[str, list[str]] = {}
    try:
        for mod in st.modules.values():
            if not mod.prefixed or peft_match.targeting(st.m, cfg, mod.name) \
                    is not peft_match.Targeting.TARGETED:
                for loc in mod.parts.values():
                    orphans.setdefault(loc.file, []).append(loc.info.name)
    except peft_match.PatternError as exc:
        st.emit.skip(config_file, f"target matching not completed: {exc}")
        return
    if cfg.get("trainable_token_indices") in (None, [], {}):
        for name, loc in st.full:
            if "trainable_tokens_delta" in name or ".token_adapter." in name:
                orphans.setdefault(loc.file, []).append(name)
    for file, names in orphans.items():
        st.reps[file](ORPHAN_TENSOR,
                      f"{len(names)} adapter tensor(s) map to no configured target: PEFT ignores "
                      f"them on load (first: {names[0]})", tensor=names[0],
                      evidence={"tensors": jlist(names[:MAX_LISTED]), "count": len(names)})
    _targets_without_tensors(st, config_rep)


def _targets_without_tensors(st: _State, config_rep: Reporter) -> None:
    targets = st.cfg.get("target_modules")
    names = [m.name for m in st.modules.values() if m.prefixed]
    if isinstance(targets, list):
        missing = [t for t in targets if isinstance(t, str)
                   and not any(n == t or n.endswith(f".{t}") for n in names)]
    elif isinstance(targets, str):
        missing = [] if names else [targets]
    else:
        return
    if missing:
        config_rep(TARGET_WITHOUT_TENSORS,
                   f"configured target(s) with no adapter tensors: {', '.join(missing[:10])}",
                   key="target_modules", evidence={"targets": jlist(missing[:MAX_LISTED])})


def _full_tensors(st: _State) -> JSONValue:
    raw = st.cfg.get("modules_to_save")
    mts = [x for x in raw if isinstance(x, str)] if isinstance(raw, list) else []
    heads = sorted(peft_match.task_heads(st.cfg))
    bias_ok = st.cfg.get("bias") in ("all", "lora_only")
    undeclared: dict[str, list[JSONValue]] = {}
    head_rows: dict[str, list[JSONValue]] = {}
    declared: list[JSONValue] = []
    for name, loc in st.full:
        if "trainable_tokens_delta" in name or ".token_adapter." in name:
            continue
        mod, _ = _strip(name.rsplit(".", 1)[0])
        try:
            is_head = any(st.m.match(rf"(^|.*\.){x}($|\..*)", mod) for x in heads)
            is_saved = is_head or any(st.m.match(rf"(^|.*\.){x}($|\..*)", mod) for x in mts)
        except peft_match.PatternError:
            is_head = is_saved = False
        row: JSONValue = {"tensor": name, "shape": list(loc.info.shape),
                          "kind": peft_match.module_kind(mod)}
        if is_head:
            head_rows.setdefault(loc.file, []).append(row)
        if is_saved or (bias_ok and name.endswith(".bias")):
            declared.append(row)
        else:
            undeclared.setdefault(loc.file, []).append(row)
    task = st.cfg.get("task_type")
    mapping = st.cfg.get("auto_mapping")
    cls = mapping.get("base_model_class") if isinstance(mapping, dict) else None
    why = (f"the {task} task head ({', '.join(heads)}), which PEFT's task type keeps trainable: "
           "loading replaces the head the task model creates at random on the base, not a "
           "pretrained base weight" if task is not None else
           f"the classification head ({', '.join(heads)}) of the task model auto_mapping names "
           f"({str(cls)[:80]}): loading replaces the layer that maps features to the task's "
           "labels, not the base's feature layers")
    for file, rows in head_rows.items():
        st.reps[file](TASK_HEAD, f"{len(rows)} tensor(s) of {why}", tensor=_first_tensor(rows),
                      evidence={"tensors": rows[:MAX_LISTED], "count": len(rows),
                                "task_type": task, "model_class": str(cls)[:200] if cls else None,
                                "heads": jlist(heads)})
    for file, rows in undeclared.items():
        first = _first_tensor(rows)
        # PEFT saves a targeted embedding's whole matrix as `<module>.base_layer.weight`
        # (save_embedding_layers): the same overwrite, written by PEFT itself.
        if first is not None and ".base_layer." in first:
            what = (f"{len(rows)} full weight tensor(s) that PEFT's save_embedding_layers "
                    "writes for a targeted embedding: loading replaces the base's embedding "
                    "table with these values")
        else:
            what = (f"{len(rows)} full (non-LoRA) weight tensor(s) not declared in "
                    "modules_to_save: they overwrite base weights of the same name")
        st.reps[file](FULL_WEIGHT_TENSOR, f"{what} (first: {first})", tensor=first,
                      evidence={"tensors": rows[:MAX_LISTED], "count": len(rows)})
    return {"declared": len(declared), "undeclared": sum(len(v) for v in undeclared.values()),
            "task_head": sum(len(v) for v in head_rows.values())}


def _first_tensor(rows: list[JSONValue]) -> str | None:
    first = rows[0]["tensor"] if isinstance(rows[0], dict) else None
    return first if isinstance(first, str) else None


def _pairs_shapes_ranks(st: _State, config_rep: Reporter) -> dict[str, JSONValue]:
    cfg = st.cfg
    base = peft_rank(cfg, None, st.m)  # r and alpha before rank_pattern / alpha_pattern
    rslora = base.rslora
    incomplete: list[JSONValue] = []
    bad_shape: list[JSONValue] = []
    rank_off: list[JSONValue] = []
    full_rank: list[JSONValue] = []
    scales: list[float] = []
    big: list[JSONValue] = []
    limit = st.emit.num(EXTREME_SCALE, "max_scale")
    for mod in st.modules.values():
        found = peft_rank(cfg, mod.name, st.m)  # the scale the weight analysis uses too
        r_cfg, alpha, scale = found.r, found.alpha, found.value
        scales.append(scale)
        if scale >= limit:
            big.append({"module": mod.name, "alpha": alpha, "r": r_cfg, "scale": scale})
        a = mod.parts.get("lora_A") or mod.parts.get("lora_embedding_A")
        b = mod.parts.get("lora_B") or mod.parts.get("lora_embedding_B")
        if a is None or b is None:
            incomplete.append({"module": mod.name, "has": jlist(sorted(mod.parts))})
            continue
        sa, sb = a.info.shape, b.info.shape
        if len(sa) not in (2, 4) or len(sb) != len(sa) or sa[0] != sb[1]:
            bad_shape.append({"module": mod.name, "A": list(sa), "B": list(sb)})
            continue
        r_t, fan_in, fan_out = sa[0], math.prod(sa[1:]), sb[0]
        for extra in ("lora_magnitude_vector", "lora_B.bias"):
            e = mod.parts.get(extra)
            if e is not None and (not e.info.shape or e.info.shape[0] != fan_out):
                bad_shape.append({"module": mod.name, extra: list(e.info.shape), "out": fan_out})
        if r_t != r_cfg:
            rank_off.append({"module": mod.name, "config_r": r_cfg, "tensor_r": r_t})
        if r_t >= min(fan_in, fan_out):
            full_rank.append({"module": mod.name, "r": r_t, "in": fan_in, "out": fan_out})
    if not st.modules and base.r > 0:
        scales.append(base.value)
        if scales[-1] >= limit:
            big.append({"module": "*", "alpha": base.alpha, "r": base.r, "scale": scales[-1]})
    any_rep = next(iter(st.reps.values()), None)
    emitted = [
        (INCOMPLETE_PAIR, incomplete, "module(s) lack a lora_A/lora_B partner"),
        (SHAPE_MISMATCH, bad_shape, "module(s) with inconsistent tensor shapes"),
        (RANK_MISMATCH, rank_off,
         "module(s) whose tensor rank differs from the configured r / rank_pattern"),
        (FULL_RANK, full_rank,
         "module(s) with r >= min(in, out): a full-rank update disguised as LoRA"),
        (EXTREME_SCALE, big,
         f"module(s) with LoRA scale >= {limit:g} (alpha/r{' with rslora' if rslora else ''})"),
    ]
    for check, rows, text in emitted:
        # Scale is a property of the config; the others point at the weights file.
        rep = config_rep if check == EXTREME_SCALE else any_rep
        if rows and rep is not None:
            first = rows[0]
            mod_name = first.get("module") if isinstance(first, dict) else None
            rep(check, f"{len(rows)} {text} (first: {mod_name})",
                evidence={"modules": rows[:MAX_LISTED], "count": len(rows)})
    return {"scale": {"min": min(scales), "max": max(scales)} if scales else None,
            "tensor_ranks": jlist(sorted({m.parts[k].info.shape[0] for m in st.modules.values()
                                    for k in ("lora_A", "lora_embedding_A")
                                    if k in m.parts and m.parts[k].info.shape}))}


def _dtypes(st: _State) -> None:
    by_file: dict[str, dict[str, int]] = {}
    for mod in st.modules.values():
        for loc in mod.parts.values():
            counts = by_file.setdefault(loc.file, {})
            counts[loc.info.dtype] = counts.get(loc.info.dtype, 0) + 1
    total: dict[str, int] = {}
    for counts in by_file.values():
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    if len(total) > 1:
        file = next(iter(by_file))
        st.reps[file](DTYPE_MIXTURE,
                      f"adapter tensors mix dtypes: {dict(sorted(total.items()))}",
                      evidence={"dtypes": dict(sorted(total.items()))})


def _fan_in_fan_out(st: _State, config_rep: Reporter) -> None:
    if st.cfg.get("fan_in_fan_out") is not True:
        return
    targets = st.cfg.get("target_modules")
    names = [t for t in targets if isinstance(t, str)] if isinstance(targets, list) else (
        [targets] if isinstance(targets, str) else [])
    names += [m.name for m in st.modules.values()]
    if not any(n.rsplit(".", 1)[-1] in CONV1D_NAMES or any(c in n for c in CONV1D_NAMES)
               for n in names):
        config_rep(FAN_IN_FAN_OUT,
                   "fan_in_fan_out is true but no target is a Conv1D (GPT-2 style) layer: the "
                   "update would be applied transposed", key="fan_in_fan_out",
                   evidence={"targets": jlist(names[:MAX_LISTED])})


def _all_zero(ref: TensorRef, chunk: int) -> bool:
    info = ref.info
    view = _ZERO_VIEW.get(info.dtype)
    item = np.dtype(view[0]).itemsize if view else 1
    step = max(item, chunk - chunk % item)
    with ref.path.open("rb") as fh:
        fh.seek(ref.header.data_start + info.begin)
        left = info.end - info.begin
        size = min(FIRST_READ, step)  # a trained B is non-zero in its first bytes: stop early
        while left > 0:
            buf = fh.read(min(size, left))
            size = step
            if not buf:
                raise OSError("file shorter than its validated header")
            left -= len(buf)
            usable = len(buf) - len(buf) % item
            if view:
                arr = np.frombuffer(buf[:usable], dtype=view[0])
                if np.any(arr & view[0](view[1])):
                    return False
                if any(buf[usable:]):
                    return False
            elif any(buf):
                return False
    return True


def _zero_b(st: _State, limits: StaticLimits) -> JSONValue:
    b_parts = [(mod.name, loc) for mod in st.modules.values() for k, loc in mod.parts.items()
               if k in ("lora_B", "lora_embedding_B")]
    if not b_parts:
        return None
    if sum(loc.info.end - loc.info.begin for _, loc in b_parts) > MAX_B_BYTES:
        st.emit.skip(b_parts[0][1].file, f"lora_B tensors exceed {MAX_B_BYTES} bytes: the "
                     "all-zero decoy check was not run")
        return None
    zero: list[str] = []
    for name, loc in b_parts:
        try:
            if _all_zero(loc, limits.chunk_bytes):
                zero.append(name)
        except OSError as exc:
            st.emit.skip(loc.file, f"could not read {loc.info.name} for the zero check: {exc}")
            return None
    if zero and len(zero) == len(b_parts):
        file = b_parts[0][1].file
        st.reps[file](ZERO_LORA_B,
                      f"every lora_B tensor ({len(zero)}) is all zeros: loading this adapter "
                      "changes nothing in its declared targets (an untrained checkpoint)",
                      tensor=b_parts[0][1].info.name,
                      evidence={"modules": jlist(zero[:MAX_LISTED]), "count": len(zero)})
    return {"zero": len(zero), "total": len(b_parts)}
