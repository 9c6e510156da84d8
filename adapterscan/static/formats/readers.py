"""Format readers: each weights file becomes one AdapterFile, recognised by its tensor names.

The format is decided by content (the grammar most of its tensor names follow), never by the
file name alone; a source holding several formats is described file by file. Each reader groups
tensors into modules, decides each module's algorithm from the roles present and resolves its
scale as that format's loader does (formats/scales.py).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from adapterscan.findings import JSONValue
from adapterscan.static.config.peft_match import Matcher
from adapterscan.static.config.peft_names import PREFIX
from adapterscan.static.formats import names
from adapterscan.static.formats.gguf import GgufFile, number
from adapterscan.static.formats.model import (
    AdapterFile,
    AdapterModel,
    AdapterModule,
    Algorithm,
    Family,
    Format,
    Scale,
    TensorRef,
)
from adapterscan.static.formats.scales import (
    AlphaError,
    adalora_scale,
    alpha_scale,
    gguf_scale,
    mlx_scale,
    peft_scale,
    read_alpha,
)
from adapterscan.static.layout import TensorTable

Config = Mapping[str, JSONValue]
DIFFUSERS_METADATA_KEY = "lora_adapter_metadata"
MAX_METADATA_JSON = 1 << 20
_LORA = frozenset({"A", "B", "mid", "E"})
_LOHA = frozenset({"w1a", "w1b", "w2a", "w2b", "t1", "t2"})
_LOKR = frozenset({"k1", "k1a", "k1b", "k2", "k2a", "k2b", "kt2"})
_EXTRAS = frozenset({"alpha", "magnitude", "bias", "on_input", "diff_b"})
# Tokens of diffusion-model module paths (UNet, DiT, FLUX); none occurs in causal LMs.
_DIFFUSION_TOKENS = ("down_blocks", "up_blocks", "mid_block", "transformer_blocks", "attn1",
                     "attn2", "double_blocks", "single_blocks", "time_emb_proj")


def is_mlx_config(cfg: Config) -> bool:
    """mlx-lm writes its training arguments, not a PEFT config: no peft_type."""
    return "peft_type" not in cfg and ("fine_tune_type" in cfg or "lora_parameters" in cfg)


@dataclass
class _Grouped:
    modules: dict[str, dict[str, TensorRef]] = field(default_factory=dict)
    embedding: set[str] = field(default_factory=set)
    others: list[TensorRef] = field(default_factory=list)
    unrecognised: list[TensorRef] = field(default_factory=list)
    unsupported: dict[str, int] = field(default_factory=dict)

    def add(self, module: str, role: str, ref: TensorRef) -> None:
        if role.startswith("unsupported:"):
            kind = role.split(":", 1)[1]
            self.unsupported[kind] = self.unsupported.get(kind, 0) + 1
            self.unrecognised.append(ref)
            return
        slot = self.modules.setdefault(module, {})
        if role in slot:  # the same module twice (two adapter names in one file)
            self.others.append(ref)
            return
        slot[role] = ref


Grammar = Callable[[str], tuple[str, str, bool] | None]


def _peft(name: str) -> tuple[str, str, bool] | None:
    return names.peft_name(name)


def _kohya(name: str) -> tuple[str, str, bool] | None:
    p = names.kohya_name(name)
    return (p[0], p[1], False) if p else None


def _mlx(name: str) -> tuple[str, str, bool] | None:
    p = names.mlx_name(name)
    return (p[0], p[1], False) if p else None


_GRAMMARS: tuple[tuple[Format, Grammar], ...] = (
    (Format.PEFT, _peft), (Format.DIFFUSERS, names.diffusers_name),
    (Format.KOHYA, _kohya), (Format.MLX, _mlx))


def _choose(header: TensorTable) -> tuple[Format | None, str]:
    """The grammar most tensor names follow (PEFT's `base_model.model.` prefix decides)."""
    counts = {f: 0 for f, _ in _GRAMMARS}
    prefixed = 0
    for info in header.tensors:
        if info.name.startswith(PREFIX):
            prefixed += 1
        for fmt, grammar in _GRAMMARS:
            if grammar(info.name) is not None:
                counts[fmt] += 1
    if prefixed:
        return Format.PEFT, f"{prefixed} tensor names start with {PREFIX!r}"
    if counts[Format.DIFFUSERS]:  # component-prefixed PEFT names are diffusers', not PEFT's
        counts[Format.PEFT] = 0
    best = max(counts.values())
    if best == 0:
        return None, "no tensor name follows a known adapter format"
    fmt = next(f for f, _ in _GRAMMARS if counts[f] == best)
    return fmt, f"{best} of {len(header.tensors)} tensor names follow the {fmt.value} naming"


def read_adapters(root: Path, headers: Mapping[str, TensorTable],
                  ggufs: Mapping[str, GgufFile], configs: Mapping[str, Config]) -> AdapterModel:
    """Describe every validated weights file (`configs`: parsed adapter_config.json by path)."""
    by_folder = {posixpath.dirname(p): c for p, c in sorted(configs.items())}
    files: list[AdapterFile] = []
    m = Matcher()  # one time budget for every config pattern of the scan
    for path in sorted(headers):
        folder = posixpath.dirname(path)
        cfg = by_folder.get(folder)
        cfg_path = posixpath.join(folder, "adapter_config.json") if cfg is not None else None
        files.append(read_safetensors(root, path, headers[path], cfg, cfg_path, m))
    for path in sorted(ggufs):
        files.append(read_gguf(root, path, ggufs[path]))
    return AdapterModel(tuple(files))


def read_safetensors(root: Path, path: str, header: TensorTable, cfg: Config | None,
                     cfg_path: str | None, m: Matcher) -> AdapterFile:
    """One weights file, in the format most of its tensor names follow."""
    fmt, note = _choose(header)
    return _read_as(fmt, note, root, path, header, cfg, cfg_path, m)


def read_peft(root: Path, path: str, header: TensorTable, cfg: Config, cfg_path: str,
              m: Matcher) -> AdapterFile:
    """One weights file as PEFT's loader reads it beside a PEFT config (whatever the other
    grammars say): what the config checks compare the config with."""
    return _read_as(Format.PEFT, f"read as PEFT beside {cfg_path}", root, path, header, cfg,
                    cfg_path, m)


def _read_as(fmt: Format | None, note: str, root: Path, path: str, header: TensorTable,
             cfg: Config | None, cfg_path: str | None, m: Matcher) -> AdapterFile:
    refs = [TensorRef(path, root / path, header, info) for info in header.tensors]
    if fmt is None:
        return AdapterFile(path, Format.PEFT, Family.UNKNOWN, (), unrecognised=tuple(refs),
                           metadata=dict(header.metadata), note=note)
    if fmt is Format.PEFT and cfg is not None and is_mlx_config(cfg):
        cfg = None  # an MLX config beside PEFT-named tensors decides nothing for them
    if fmt is Format.MLX and cfg is not None and not is_mlx_config(cfg):
        cfg = None
    if fmt is Format.DIFFUSERS:  # diffusers keeps each component's LoraConfig in the metadata
        cfg = diffusers_configs(header.metadata)
    grammar = dict(_GRAMMARS)[fmt]
    g = _Grouped()
    for ref in refs:
        parsed = grammar(ref.info.name)
        if parsed is None:
            (g.others if fmt is Format.PEFT else g.unrecognised).append(ref)
            continue
        module, role, emb = parsed
        if fmt is Format.PEFT and role == "magnitude":
            g.others.append(ref)  # DoRA magnitudes: checked by weights/dora.py with the base
            continue
        if emb:
            g.embedding.add(module)
        g.add(module, role, ref)
    build = _MODULE_BUILDERS[fmt]
    modules = [build(name, roles, name in g.embedding, cfg, m) for name, roles in
               sorted(g.modules.items())]
    kept = [mod for mod in modules if mod is not None]
    kept_names = {mod.name for mod in kept}
    for name, roles in sorted(g.modules.items()):
        if name not in kept_names:
            (g.others if fmt is Format.PEFT else g.unrecognised).extend(roles.values())
    family = _family(fmt, cfg, kept)
    return AdapterFile(path, fmt, family, tuple(kept), tuple(g.others), tuple(g.unrecognised),
                       dict(g.unsupported), _base_hint(fmt, cfg, header.metadata),
                       dict(header.metadata), cfg_path if cfg is not None else None, note)


# A module problem that a loader does not refuse: it applies one of the tensor sets.
MIXED_ALGORITHMS = "tensors of several algorithms in one module"


def _algorithm(roles: Mapping[str, TensorRef]) -> tuple[Algorithm | None, str | None]:
    keys = set(roles) - _EXTRAS
    found = [a for a, ks in ((Algorithm.LORA, _LORA), (Algorithm.LOHA, _LOHA),
                             (Algorithm.LOKR, _LOKR), (Algorithm.IA3, frozenset({"ia3"})),
                             (Algorithm.FULL, frozenset({"diff"}))) if keys & ks]
    if not found:
        return None, None
    if len(found) > 1:
        return found[0], f"{MIXED_ALGORITHMS}: {sorted(keys)}"
    return found[0], None


def _problem(algo: Algorithm, roles: Mapping[str, TensorRef]) -> str | None:
    """A missing factor that the algorithm needs."""
    def missing(*need: str) -> list[str]:
        return [r for r in need if r not in roles]

    if algo is Algorithm.LORA:
        gone = missing("A", "B")
        if gone:
            return "lora_A without lora_B" if gone == ["B"] else (
                "lora_B without lora_A" if gone == ["A"] else "no LoRA factors")
    elif algo is Algorithm.LOHA:
        gone = missing("w1a", "w1b", "w2a", "w2b")
        if gone:
            return f"LoHa module without {', '.join(gone)}"
    elif algo is Algorithm.LOKR:
        if "k1" not in roles and not {"k1a", "k1b"} <= set(roles):
            return "LoKr module without lokr_w1 (or lokr_w1_a and lokr_w1_b)"
        if "k2" not in roles and not {"k2a", "k2b"} <= set(roles):
            return "LoKr module without lokr_w2 (or lokr_w2_a and lokr_w2_b)"
    return None


def _rank(algo: Algorithm, roles: Mapping[str, TensorRef], transposed: bool) -> int | None:
    def rows(role: str, axis: int = 0) -> int | None:
        ref = roles.get(role)
        return ref.info.shape[axis] if ref is not None and ref.info.shape else None

    if algo is Algorithm.LORA:
        return rows("A", -1 if transposed else 0)
    if algo is Algorithm.LOHA:
        return rows("w1b")
    if algo is Algorithm.LOKR:
        return rows("k1b") if "k1b" in roles else rows("k2b")
    return None


def _module(name: str, roles: Mapping[str, TensorRef], target: str, scale_for: Callable[
        [Algorithm, int | None], Scale], *, embedding: bool = False, transposed: bool = False,
        component: str | None = None, ia3_offset: float = 0.0) -> AdapterModule | None:
    algo, problem = _algorithm(roles)
    if algo is None:
        return None
    problem = problem or _problem(algo, roles)
    factors = {k: v for k, v in roles.items() if k not in _EXTRAS}
    rank = _rank(algo, roles, transposed) if problem is None else None
    try:
        scale = scale_for(algo, rank)
    except AlphaError as exc:
        scale = Scale(1.0, rank or 0, 0.0, "alpha unreadable", roles.get("alpha"))
        problem = problem or str(exc)
    on_input = roles.get("on_input")
    return AdapterModule(
        name=name, algorithm=algo, factors=factors, scale=scale, target=target,
        embedding=embedding, transposed=transposed,
        bias=roles.get("bias") or roles.get("diff_b"), magnitude=roles.get("magnitude"),
        component=component, problem=problem,
        ia3_on_input=on_input is not None and _flag(on_input), ia3_gain_offset=ia3_offset)


def _flag(ref: TensorRef) -> bool:
    """LyCORIS (IA)3 `on_input`: a one-element tensor, true when non-zero."""
    try:
        return read_alpha(ref) != 0.0
    except AlphaError:
        return False


def _kohya_scale(roles: Mapping[str, TensorRef]) -> Callable[[Algorithm, int | None], Scale]:
    def scale(algo: Algorithm, rank: int | None) -> Scale:
        ref = roles.get("alpha")
        if algo in (Algorithm.IA3, Algorithm.FULL):
            return Scale(1.0, 0, 0.0, f"{algo.value}: no scale")
        if algo is Algorithm.LOKR and rank is None:  # both sides full: the alpha is not used
            return Scale(1.0, 0, 0.0, "lokr with full factors: scale 1", ref)
        return alpha_scale(read_alpha(ref) if ref is not None else None, rank, ref)
    return scale


def _peft_module(name: str, roles: Mapping[str, TensorRef], embedding: bool,
                 cfg: Config | None, m: Matcher) -> AdapterModule | None:
    target = name[len(PREFIX):] if name.startswith(PREFIX) else name

    def scale(algo: Algorithm, rank: int | None) -> Scale:
        if algo in (Algorithm.IA3, Algorithm.FULL):
            return Scale(1.0, 0, 0.0, f"{algo.value}: no scale")
        if cfg is not None and cfg.get("peft_type") == "ADALORA":
            return adalora_scale(cfg, rank or 0)
        key = "lora_alpha" if algo is Algorithm.LORA else "alpha"
        return peft_scale(cfg, target, rank or 0, key, m)

    return _module(name, roles, target, scale, embedding=embedding)


def _kohya_module(name: str, roles: Mapping[str, TensorRef], embedding: bool,
                  cfg: Config | None, m: Matcher) -> AdapterModule | None:
    return _module(name, roles, names.kohya_target(name), _kohya_scale(roles),
                   component=names.kohya_component(name), ia3_offset=1.0)


def diffusers_configs(meta: Mapping[str, str]) -> Config:
    """component -> LoraConfig dict from `lora_adapter_metadata` (diffusers saves each
    component's config there, keys prefixed `unet.`, `transformer.`...), bounded."""
    raw = meta.get(DIFFUSERS_METADATA_KEY, "")
    try:
        packed = json.loads(raw) if 0 < len(raw) <= MAX_METADATA_JSON else None
    except (ValueError, RecursionError):
        packed = None
    out: dict[str, JSONValue] = {}
    if isinstance(packed, dict):
        for key, value in packed.items():
            component, _, field_name = str(key).partition(".")
            entry = out.setdefault(component, {})
            if field_name and isinstance(entry, dict):
                entry[field_name] = value
    return out


def _diffusers_module(name: str, roles: Mapping[str, TensorRef], embedding: bool,
                      cfg: Config | None, m: Matcher) -> AdapterModule | None:
    head, _, rest = name.partition(".")
    component = head if head in names.DIFFUSERS_COMPONENTS else "unet"
    target = (rest if head in names.DIFFUSERS_COMPONENTS else name).replace(".processor.", ".")
    comp_cfg = cfg.get(component) if cfg is not None else None
    kohya = _kohya_scale(roles)

    def scale(algo: Algorithm, rank: int | None) -> Scale:
        if "alpha" in roles or not isinstance(comp_cfg, dict) or algo is not Algorithm.LORA:
            return kohya(algo, rank)
        found = peft_scale(comp_cfg, target, rank or 0, m=m)
        return replace(found, source=f"{DIFFUSERS_METADATA_KEY} {found.source}")

    return _module(name, roles, target, scale, embedding=embedding, component=component)


def _mlx_module(name: str, roles: Mapping[str, TensorRef], embedding: bool,
                cfg: Config | None, m: Matcher) -> AdapterModule | None:
    def scale(algo: Algorithm, rank: int | None) -> Scale:
        return mlx_scale(cfg, rank or 0)

    return _module(name, roles, name, scale, transposed=True,
                   embedding=name.rsplit(".", 1)[-1] in ("embed_tokens", "wte"))


_MODULE_BUILDERS: Mapping[Format, Callable[[str, Mapping[str, TensorRef], bool, Config | None,
                                            Matcher], AdapterModule | None]] = {
    Format.PEFT: _peft_module, Format.KOHYA: _kohya_module,
    Format.DIFFUSERS: _diffusers_module, Format.MLX: _mlx_module,
}


def _family(fmt: Format, cfg: Config | None, modules: list[AdapterModule]) -> Family:
    if fmt in (Format.KOHYA, Format.DIFFUSERS):
        return Family.DIFFUSION
    if fmt in (Format.MLX, Format.GGUF):
        return Family.CAUSAL_LM
    targets = [m.target for m in modules]
    if any(t in name for name in targets for t in _DIFFUSION_TOKENS):
        return Family.DIFFUSION
    task = cfg.get("task_type") if cfg is not None else None
    if task == "CAUSAL_LM" or (task is None and any(".layers." in f".{t}" for t in targets)):
        return Family.CAUSAL_LM
    return Family.UNKNOWN


def _base_hint(fmt: Format, cfg: Config | None, meta: Mapping[str, str]) -> str | None:
    if fmt is Format.PEFT and cfg is not None:
        v = cfg.get("base_model_name_or_path")
        return v if isinstance(v, str) else None
    if fmt is Format.MLX and cfg is not None:
        v = cfg.get("model")
        return v if isinstance(v, str) else None
    for key in ("ss_sd_model_name", "modelspec.architecture", "ss_base_model_version"):
        if meta.get(key):
            return meta[key][:200]
    return None


def read_gguf(root: Path, path: str, gguf: GgufFile) -> AdapterFile:
    refs = [TensorRef(path, root / path, gguf, info) for info in gguf.tensor_infos()]
    meta = {k: str(v)[:200] for k, v in gguf.kv.items() if not k.startswith("tokenizer.")}
    gtype, atype = gguf.string("general.type"), gguf.string("adapter.type")
    base = gguf.string("general.base_model.0.repo_url") or gguf.string(
        "general.base_model.0.name") or gguf.string("general.architecture")
    if gtype != "adapter" or atype != "lora":
        note = (f"general.type={gtype!r}, adapter.type={atype!r}: not a LoRA adapter "
                "(a model or another adapter kind)")
        return AdapterFile(path, Format.GGUF, Family.CAUSAL_LM, (), unrecognised=tuple(refs),
                           base_model=base, metadata=meta, note=note)
    alpha = number(gguf.kv.get("adapter.lora.alpha"))
    g = _Grouped()
    for ref in refs:
        parsed = names.gguf_name(ref.info.name)
        if parsed is None:
            g.unrecognised.append(ref)
        else:
            g.add(parsed[0], parsed[1], ref)

    def scale(algo: Algorithm, rank: int | None) -> Scale:
        return gguf_scale(alpha, rank or 0)

    arch = gguf.string("general.architecture")
    modules: list[AdapterModule] = []
    for name, roles in sorted(g.modules.items()):
        hf = names.gguf_target(name) if arch in names.GGUF_HF_ARCHS else None
        m = _module(name, roles, hf or name, scale)
        if m is not None:
            permuted = arch in names.GGUF_ROPE_PERMUTED and name.endswith(("attn_q", "attn_k"))
            modules.append(replace(m, permuted_rows=permuted))
    return AdapterFile(path, Format.GGUF, Family.CAUSAL_LM, tuple(modules), (),
                       tuple(g.unrecognised + g.others), {}, base, meta, None,
                       "general.type=adapter, adapter.type=lora")
