"""PEFT's module-targeting rules, re-implemented without importing peft (peft 0.21.2 semantics).

Mirrors `peft.tuners.tuners_utils.check_target_module_exists` and
`peft.utils.other.get_pattern_key`.
Those interpolate strings from adapter_config.json into regular expressions, so a hostile config
can ship a catastrophic-backtracking pattern: every match here runs under a time budget (with the
`regex` module's timeout when it is installed; otherwise under a pattern-length cap only).
"""

from __future__ import annotations

import enum
import importlib
import re
import time
from collections.abc import Mapping, Sequence
from types import ModuleType

from adapterscan.findings import JSONValue

_regex: ModuleType | None
try:  # `regex` supports a per-call timeout; `re` does not. Same syntax for what PEFT accepts.
    _regex = importlib.import_module("regex")
except ImportError:  # pragma: no cover - depends on the environment
    _regex = None

MAX_PATTERN_CHARS = 1024
PER_CALL_TIMEOUT_S = 0.05
TOTAL_BUDGET_S = 2.0

# Module names of the layers whose outputs reach every token: input embeddings and output heads.
EMBED_NAMES = frozenset({"embed_tokens", "embed_in", "wte", "wpe", "word_embeddings", "embeddings",
                         "shared", "tok_embeddings", "embed_positions", "position_embeddings",
                         "word_embeddings_layernorm"})
HEAD_NAMES = frozenset({"lm_head", "embed_out", "output_layer", "output", "head"})
# Task heads PEFT's task type adds to modules_to_save itself (peft_model.py:
# CLASSIFIER_MODULE_NAMES for PeftModelForSequence/TokenClassification, qa_module_names for
# PeftModelForQuestionAnswering): heads the task model creates at random on a base checkpoint.
_CLASSIFIER_HEADS = frozenset({"classifier", "score", "pre_classifier"})
TASK_HEADS: dict[str, frozenset[str]] = {"SEQ_CLS": _CLASSIFIER_HEADS,
                                         "TOKEN_CLS": _CLASSIFIER_HEADS,
                                         "QUESTION_ANS": frozenset({"qa_outputs"})}
_NORM_RE = re.compile(r"(norm|^ln(_\w+)?$|^ln$)", re.IGNORECASE)
# Probe names for regex target_modules: what the common architectures call those layers.
PROBE_MODULES = (
    "model.embed_tokens", "lm_head", "model.norm", "model.layers.0.input_layernorm",
    "model.layers.0.post_attention_layernorm", "transformer.wte", "transformer.wpe",
    "transformer.ln_f", "transformer.h.0.ln_1", "gpt_neox.embed_in", "embed_out",
    "model.decoder.embed_tokens", "shared", "encoder.embed_tokens", "model.final_layernorm",
    "transformer.word_embeddings", "model.embeddings",
)


def module_kind(name: str) -> str | None:
    """'embedding', 'head' or 'norm' for a module name (its last component), else None."""
    last = name.rsplit(".", 1)[-1]
    if last in EMBED_NAMES:
        return "embedding"
    if last in HEAD_NAMES:
        return "head"
    if _NORM_RE.search(last):
        return "norm"
    return None


# A config without a task type (vision and audio classifiers are trained that way: PEFT's docs put
# the head in modules_to_save by hand) still names the model class in auto_mapping; the class's
# own classification head is then the same kind of layer: new for the task, not a base weight.
_CLASS_HEADS = ((re.compile(r"For(Image|Audio|Sequence|Token|Video)Classification$"),
                 _CLASSIFIER_HEADS), (re.compile(r"ForQuestionAnswering$"),
                                      frozenset({"qa_outputs"})))


def task_heads(cfg: Mapping[str, object]) -> frozenset[str]:
    """The head module names that the task type (or, without one, the task model class that
    auto_mapping names) creates for the task: PEFT keeps them trainable and loads them."""
    task_type = cfg.get("task_type")
    if isinstance(task_type, str) and task_type in TASK_HEADS:
        return TASK_HEADS[task_type]
    mapping = cfg.get("auto_mapping")
    cls = mapping.get("base_model_class") if isinstance(mapping, Mapping) else None
    if task_type is None and isinstance(cls, str) and len(cls) <= 200:
        for pattern, heads in _CLASS_HEADS:
            if pattern.search(cls):
                return heads
    return frozenset()


class PatternError(Exception):
    """A pattern from the config that is invalid, too long or too slow to evaluate."""


class Matcher:
    """Bounded regex evaluation over config-supplied patterns, with a per-scan time budget."""

    def __init__(self, budget_s: float = TOTAL_BUDGET_S) -> None:
        self._deadline = time.monotonic() + budget_s
        self._cache: dict[tuple[str, str, bool], bool] = {}

    def _run(self, pattern: str, text: str, full: bool) -> bool:
        key = (pattern, text, full)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if len(pattern) > MAX_PATTERN_CHARS:
            raise PatternError(f"pattern longer than {MAX_PATTERN_CHARS} characters")
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise PatternError("pattern matching exceeded its time budget")
        try:
            if _regex is not None:
                fn = _regex.fullmatch if full else _regex.match
                result = fn(pattern, text, timeout=min(PER_CALL_TIMEOUT_S, remaining)) is not None
            else:
                result = (re.fullmatch if full else re.match)(pattern, text) is not None
        except TimeoutError:
            raise PatternError("pattern took too long to match (catastrophic backtracking?)") \
                from None
        except (re.error, RecursionError, OverflowError, ValueError) as exc:
            raise PatternError(f"invalid pattern: {exc}") from None
        except Exception as exc:  # regex.error is not a re.error subclass
            raise PatternError(f"invalid pattern: {exc}") from None
        self._cache[key] = result
        return result

    def fullmatch(self, pattern: str, text: str) -> bool:
        return self._run(pattern, text, True)

    def match(self, pattern: str, text: str) -> bool:
        return self._run(pattern, text, False)


class Targeting(enum.Enum):
    TARGETED = "targeted"
    EXCLUDED = "excluded"
    NOT_TARGETED = "not_targeted"


def _str_list(value: JSONValue) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _layer_index(m: Matcher, cfg: Mapping[str, JSONValue], key: str) -> int | None:
    patterns = _str_list(cfg.get("layers_pattern"))
    if not patterns:
        found = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key)
        return int(found.group("idx")) if found else None
    for pattern in patterns:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise PatternError("layers_pattern too long")
        # Same interpolation as PEFT; the pattern is config-controlled, hence the Matcher.
        full = rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\."
        if m.match(full, key):
            found = re.match(full, key)
            if found:
                return int(found.group("idx"))
    return None


def targeting(m: Matcher, cfg: Mapping[str, JSONValue], key: str) -> Targeting:
    """Would PEFT wrap module `key` (a name relative to the base model) with an adapter layer?"""
    exclude = cfg.get("exclude_modules")
    if isinstance(exclude, str) and exclude:
        if m.fullmatch(exclude, key):
            return Targeting.EXCLUDED
    elif any(key == e or key.endswith(f".{e}") for e in _str_list(exclude)):
        return Targeting.EXCLUDED
    for name in _str_list(cfg.get("modules_to_save")):
        if m.match(rf"(^|.*\.){name}($|\..*)", key):
            return Targeting.EXCLUDED
    targets = cfg.get("target_modules")
    params = _str_list(cfg.get("target_parameters"))
    # target_parameters name parameters ("mlp.experts.gate_up_proj"); the LoRA tensors hang
    # off the module that owns the parameter.
    owners = [p.rsplit(".", 1)[0] for p in params if "." in p]
    by_param = any(key == o or key.endswith(f".{o}") for o in owners)
    if targets is None:
        return Targeting.TARGETED if by_param else Targeting.NOT_TARGETED
    if isinstance(targets, str):
        if targets == "all-linear":
            return Targeting.NOT_TARGETED if module_kind(key) else Targeting.TARGETED
        return Targeting.TARGETED if m.fullmatch(targets, key) else Targeting.NOT_TARGETED
    names = _str_list(targets)
    if key in names:
        return Targeting.TARGETED
    found = any(key.endswith(f".{t}") for t in names)
    layers = cfg.get("layers_to_transform")
    using = layers is not None and (len(layers) != 0 if isinstance(layers, list) else True)
    if using and found:
        index = _layer_index(m, cfg, key)
        if index is None:
            found = False
        elif isinstance(layers, int) and not isinstance(layers, bool):
            found = index == layers
        elif isinstance(layers, list):
            found = index in layers
        else:
            found = False
    if not found and by_param:
        found = True
    return Targeting.TARGETED if found else Targeting.NOT_TARGETED


def matching_names(m: Matcher, pattern: str, names: Sequence[str]) -> list[str]:
    return [n for n in names if m.fullmatch(pattern, n)]
