"""PEFT itself as the oracle for what loading an adapter does (issue 23 part 1).

Off the scan path: this module imports torch, transformers and peft. It reads the adapter's
config and tensor names/shapes (safetensors metadata, or adapterscan's own torch-archive table
reader: never torch.load), builds a skeleton of the named architecture from its transformers
config class with the sizes the LoRA shapes imply (on the meta device, then allocated empty:
no download, no initialisation), wraps it with `get_peft_model`, and loads a state dict of
zero tensors of the file's names and shapes with `set_peft_model_state_dict`, as
`PeftModel.from_pretrained` does after reading the file. What PEFT reports (missing and
unexpected keys) and which non-LoRA parameters the load wrote (their in-place version counter
moved) is the record the config rules are compared against.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_ENDPOINT": "http://127.0.0.1:9"}

Shapes = dict[str, tuple[int, ...]]
LORA_PART = re.compile(r"^(?P<mod>.+)\.(?P<part>lora_A|lora_B)(?:\.[^.]+)?\.weight$")
LAYER = re.compile(r"\.(\d+)\.")


@dataclass(frozen=True)
class OracleRecord:
    folder: str
    loaded: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # in the file, not loaded: PEFT's unexpected keys
    missing: tuple[str, ...] = ()  # adapter parameters PEFT created that the file did not fill
    overwritten: tuple[str, ...] = ()  # non-LoRA modules whose weights the load wrote
    architecture: str = ""
    error: str = ""  # "unsupported: <why>" or the load's failure

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class Dims:
    """What the LoRA shapes say about the base: per module leaf name (q_proj, c_attn...), the
    (in, out) features; the number of layers; the full tensors' shapes."""
    io: Mapping[str, tuple[int, int]]
    layers: int
    full: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def inp(self, *names: str) -> int | None:
        return next((self.io[n][0] for n in names if n in self.io), None)

    def out(self, *names: str) -> int | None:
        return next((self.io[n][1] for n in names if n in self.io), None)

    def labels(self, *heads: str) -> int:
        for name, shape in self.full.items():
            if len(shape) == 2 and any(f"{h}.weight" in name or f"{h}.out_proj.weight" in name
                                       for h in heads):
                return shape[0]
        return 2

    def vocab(self) -> int:
        for name, shape in self.full.items():
            if re.search(r"(wte|embed_tokens|word_embeddings|lm_head|shared)\.weight$", name):
                return shape[0]
        return 8


def read_shapes(folder: Path) -> Shapes:
    st = folder / "adapter_model.safetensors"
    if st.is_file():
        from safetensors import safe_open

        with safe_open(str(st), framework="numpy") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    bin_ = folder / "adapter_model.bin"
    if bin_.is_file():
        from adapterscan.static.formats.torch_archive import read_archive
        from adapterscan.static.limits import StaticLimits

        table = read_archive(bin_, bin_.name, StaticLimits())
        return {t.name: t.shape for t in table.tensors}
    raise FileNotFoundError("no adapter_model.safetensors or adapter_model.bin")


def dims_of(shapes: Shapes, hidden_hint: int | None = None) -> Dims:
    io: dict[str, tuple[int, int]] = {}
    full: dict[str, tuple[int, ...]] = {}
    layers = 0
    for name, shape in shapes.items():
        m = LORA_PART.match(name)
        if m is None:
            full[name] = shape
            continue
        parts = [p for p in m["mod"].split(".") if not p.isdigit()]
        for leaf in (parts[-1], ".".join(parts[-2:])):  # q_proj; attn.c_proj vs mlp.c_proj
            inp, out = io.get(leaf, (0, 0))
            io[leaf] = (shape[1], out) if m["part"] == "lora_A" else (inp, shape[0])
        layers = max([layers, *(int(i) + 1 for i in LAYER.findall(name))])
    return Dims(io, max(layers, 1), full)


def _heads(h: int, q: int | None, kv: int | None) -> dict[str, int]:
    """Attention heads for a q/kv projection of widths q and kv: head_dim the gcd, so both
    divide; grouped-query needs heads % kv_heads == 0, which gcd gives."""
    import math

    q, kv = q or h, kv or q or h
    hd = math.gcd(q, kv)
    return {"num_attention_heads": q // hd, "num_key_value_heads": kv // hd, "head_dim": hd}


def _gpt2(d: Dims) -> Any:
    from transformers import GPT2Config

    h = d.inp("attn.c_attn", "c_attn", "attn.c_proj") or d.out("attn.c_proj") or 8
    inner = d.inp("mlp.c_proj") or d.out("mlp.c_fc", "c_fc") or 8
    return GPT2Config(n_embd=h, n_layer=d.layers, n_head=1, n_inner=inner, n_positions=16,
                      vocab_size=d.vocab(), num_labels=d.labels("score"), pad_token_id=0)


def _gpt_neo(d: Dims) -> Any:
    from transformers import GPTNeoConfig

    h = d.inp("q_proj", "k_proj", "v_proj") or 8
    return GPTNeoConfig(hidden_size=h, num_layers=d.layers, num_heads=1,
                        attention_types=[[["global"], d.layers]], intermediate_size=8,
                        max_position_embeddings=16, vocab_size=d.vocab(),
                        num_labels=d.labels("score"), pad_token_id=0)


def _opt(d: Dims) -> Any:
    from transformers import OPTConfig

    h = d.inp("q_proj", "k_proj", "v_proj") or 8
    return OPTConfig(hidden_size=h, word_embed_proj_dim=h, num_hidden_layers=d.layers,
                     num_attention_heads=1, ffn_dim=d.out("fc1") or 8, vocab_size=d.vocab(),
                     max_position_embeddings=16, num_labels=d.labels("score"), pad_token_id=0)


def _llama_like(cls_name: str) -> Callable[[Dims], Any]:
    def build(d: Dims) -> Any:
        import transformers

        h = d.inp("q_proj", "k_proj", "v_proj", "o_proj") or d.out("o_proj") or 8
        heads = _heads(h, d.out("q_proj") or d.inp("o_proj"), d.out("k_proj", "v_proj"))
        inter = d.out("gate_proj", "up_proj") or d.inp("down_proj") or 8
        cfg = getattr(transformers, cls_name)
        return cfg(hidden_size=h, intermediate_size=inter, num_hidden_layers=d.layers,
                   vocab_size=d.vocab(), max_position_embeddings=16,
                   num_labels=d.labels("score"), pad_token_id=0, **heads)
    return build


def _phi(d: Dims) -> Any:
    from transformers import PhiConfig

    h = d.inp("q_proj", "k_proj", "v_proj", "dense") or 8
    return PhiConfig(hidden_size=h, intermediate_size=d.out("fc1") or 8,
                     num_hidden_layers=d.layers, num_attention_heads=1, vocab_size=d.vocab(),
                     max_position_embeddings=16, num_labels=d.labels("score"), pad_token_id=0)


def _bert_like(cls_name: str) -> Callable[[Dims], Any]:
    def build(d: Dims) -> Any:
        import transformers

        h = d.inp("query", "key", "value") or 8
        cfg = getattr(transformers, cls_name)
        return cfg(hidden_size=h, num_hidden_layers=d.layers, num_attention_heads=1,
                   intermediate_size=d.out("intermediate.dense") or 8, vocab_size=d.vocab(),
                   max_position_embeddings=16, num_labels=d.labels("classifier"))
    return build


def _distilbert(d: Dims) -> Any:
    from transformers import DistilBertConfig

    h = d.inp("q_lin", "k_lin", "v_lin") or 8
    return DistilBertConfig(dim=h, n_layers=d.layers, n_heads=1, hidden_dim=d.out("lin1") or 8,
                            vocab_size=d.vocab(), max_position_embeddings=16,
                            num_labels=d.labels("classifier"))


def _t5(d: Dims) -> Any:
    from transformers import T5Config

    h = d.inp("q", "k", "v") or 8
    return T5Config(d_model=h, d_kv=d.out("q", "k", "v") or h, num_heads=1, d_ff=8,
                    num_layers=d.layers, num_decoder_layers=d.layers, vocab_size=d.vocab())


def _vit(d: Dims) -> Any:
    from transformers import ViTConfig

    h = d.inp("query", "key", "value") or 8
    return ViTConfig(hidden_size=h, num_hidden_layers=d.layers, num_attention_heads=1,
                     intermediate_size=8, image_size=4, patch_size=2,
                     num_labels=d.labels("classifier"))


# Base name (lower case) substring -> config builder. Order matters: distilbert before bert.
FAMILIES: tuple[tuple[str, str, Callable[[Dims], Any]], ...] = (
    ("dialogpt", "gpt2", _gpt2), ("gpt-neo", "gpt_neo", _gpt_neo), ("gpt2", "gpt2", _gpt2),
    ("opt-", "opt", _opt), ("llama", "llama", _llama_like("LlamaConfig")),
    ("qwen2", "qwen2", _llama_like("Qwen2Config")),
    ("gemma-3", "gemma3", _llama_like("Gemma3TextConfig")),
    ("gemma", "gemma", _llama_like("GemmaConfig")), ("phi-", "phi", _phi),
    ("distilbert", "distilbert", _distilbert), ("roberta", "roberta", _bert_like("RobertaConfig")),
    ("bert", "bert", _bert_like("BertConfig")), ("t5", "t5", _t5), ("vit", "vit", _vit),
)
# With no base name, a structure only one family has: GPT-2's fused c_attn under transformer.h.
STRUCTURES = ((re.compile(r"transformer\.h\.\d+\.attn\.c_attn\."), "gpt2", _gpt2),)


def family(cfg: Mapping[str, Any], shapes: Shapes) -> tuple[str, Callable[[Dims], Any]] | str:
    mapping = cfg.get("auto_mapping")
    cls = mapping.get("base_model_class") if isinstance(mapping, dict) else None
    lib = mapping.get("parent_library") if isinstance(mapping, dict) else None
    if isinstance(lib, str) and not lib.startswith("transformers."):
        return f"unsupported: auto_mapping names {cls} from {lib} (not a transformers model)"
    name = str(cfg.get("base_model_name_or_path") or cls or "").lower()
    for key, arch, build in FAMILIES:
        if key in name:
            return arch, build
    if name:
        return f"unsupported: no skeleton for base {name[:80]!r}"
    for pat, arch, build in STRUCTURES:
        if any(pat.search(k) for k in shapes):
            return arch, build
    return "unsupported: no base model named and no tensor structure that names one"


def _model_classes(cfg: Mapping[str, Any]) -> list[Any]:
    import transformers as tf

    task = cfg.get("task_type")
    mapping = cfg.get("auto_mapping")
    cls = mapping.get("base_model_class") if isinstance(mapping, dict) else None
    by_task = {"SEQ_CLS": tf.AutoModelForSequenceClassification,
               "CAUSAL_LM": tf.AutoModelForCausalLM,
               "SEQ_2_SEQ_LM": tf.AutoModelForSeq2SeqLM,
               "TOKEN_CLS": tf.AutoModelForTokenClassification,
               "QUESTION_ANS": tf.AutoModelForQuestionAnswering}
    out: list[Any] = []
    if isinstance(task, str) and task in by_task:
        out.append(by_task[task])
    if isinstance(cls, str) and hasattr(tf, cls):
        out.append(getattr(tf, cls))
    return [*out, tf.AutoModelForCausalLM, tf.AutoModel, tf.AutoModelForSeq2SeqLM]


def _skeleton(cfg: Mapping[str, Any], build: Callable[[Dims], Any], shapes: Shapes) -> Any:
    """The first model class whose module names hold the file's first LoRA module (a task
    type of None leaves the class to the structure the adapter was saved from)."""
    import torch

    conf = build(dims_of(shapes))
    lora = sorted(m["mod"] for k in shapes if (m := LORA_PART.match(k)))
    want = lora[0].removeprefix("base_model.model.") if lora else ""
    first = None
    for auto in _model_classes(cfg):
        try:
            with torch.device("meta"):
                # an Auto class builds from a config; a named model class (ViT...) is called
                model = auto.from_config(conf) if hasattr(auto, "from_config") else auto(conf)
        except (ValueError, KeyError):
            continue
        first = first or model
        if not want or want in dict(model.named_modules()):
            return model
    if first is None:
        raise ValueError(f"no model class builds {type(conf).__name__}")
    return first


def _norm(key: str, adapter: str = "default") -> str:
    return key.replace(f".{adapter}.", ".").replace(f".{adapter}", "")


@contextmanager
def offline() -> Iterator[None]:
    """Nothing the load does may reach the network; the caller's environment is restored
    after (a test process goes on to other tests)."""
    saved = {k: os.environ.get(k) for k in OFFLINE}
    os.environ.update(OFFLINE)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def oracle(folder: Path | str) -> OracleRecord:
    folder = Path(folder)
    name = folder.name
    cfg_path = folder / "adapter_config.json"
    if not cfg_path.is_file():
        return OracleRecord(name, error="unsupported: no adapter_config.json (not a PEFT folder)")
    try:
        cfg = json.loads(cfg_path.read_text())
        shapes = read_shapes(folder)
    except Exception as exc:  # any reader failure is the record
        return OracleRecord(name, error=f"unsupported: adapter not read ({exc})"[:300])
    fam = family(cfg, shapes)
    if isinstance(fam, str):
        return OracleRecord(name, error=fam)
    arch, build = fam
    try:
        with offline():
            return _load(folder, name, arch, cfg, build, shapes)
    except Exception as exc:  # a failed load is what the record says
        return OracleRecord(name, architecture=arch,
                            error=f"load failed: {type(exc).__name__}: {exc}"[:400])


def _load(folder: Path, name: str, arch: str, cfg: Mapping[str, Any],
          build: Callable[[Dims], Any], shapes: Shapes) -> OracleRecord:
    import torch
    from peft import PeftConfig, get_peft_model, set_peft_model_state_dict

    peft_cfg = PeftConfig.from_pretrained(str(folder))
    peft_cfg.inference_mode = False
    if getattr(peft_cfg, "prompt_tuning_init", None) is not None:
        # the init reads a tokenizer (a download); the loaded file replaces it anyway
        peft_cfg.prompt_tuning_init = "RANDOM"
    model = get_peft_model(_skeleton(cfg, build, shapes), peft_cfg)
    model.to_empty(device="cpu")  # allocated, never initialised: pages touched only on write
    before = {k: p._version for k, p in model.state_dict(keep_vars=True).items()}
    state = {k: torch.zeros(s) for k, s in shapes.items()}
    result = set_peft_model_state_dict(model, state)
    after = model.state_dict(keep_vars=True)
    written = [k for k, p in after.items() if p._version != before.get(k)]
    overwritten = sorted({
        _norm(k.rsplit(".", 1)[0]).replace(".modules_to_save", "").replace(".original_module", "")
        for k in written if "lora_" not in k and "prompt_encoder" not in k})
    unexpected = {_norm(k) for k in result.unexpected_keys}
    # PEFT loads a prompt-learning file's `prompt_embeddings` into the prompt encoder by hand,
    # then passes the whole dict to load_state_dict, which calls it unexpected: written decides
    prompt_written = any("prompt_encoder" in k for k in written)
    ignored = sorted(k for k in shapes if (_norm(k) in unexpected or k in unexpected)
                     and not (k == "prompt_embeddings" and prompt_written))
    missing = sorted(_norm(k) for k in result.missing_keys
                     if "lora_" in k or "modules_to_save" in k
                     or ("prompt_encoder" in k and not prompt_written))
    loaded = sorted(set(shapes) - set(ignored))
    return OracleRecord(name, tuple(loaded), tuple(ignored), tuple(missing), tuple(overwritten),
                        arch)
