"""The probe's work for one adapter (see interface.py for the order and why): each phase
measures into a frozen record (records.py), then the detectors (decide.py) decide on it."""

from __future__ import annotations

import time
from typing import Any

import torch
import transformers

from adapterscan._version import __version__
from adapterscan.emit import Emitter
from adapterscan.fetch.base_model import ResolvedBase
from adapterscan.findings import JSONValue
from adapterscan.probe import decide
from adapterscan.probe import signals as sg
from adapterscan.probe.checks import NO_POWER, REFUSAL_DROP, TRIGGER
from adapterscan.probe.compare import compare
from adapterscan.probe.context import Context
from adapterscan.probe.judge import RefusalJudge
from adapterscan.probe.merged import AdapterMerge, CheckpointLoad, MergedModel
from adapterscan.probe.model_loading import LoadedModel, apply_adapter, load_base, load_checkpoint
from adapterscan.probe.options import ProbeOptions, Progress
from adapterscan.probe.power import PowerCheck, assess
from adapterscan.probe.prompts import PromptSuites
from adapterscan.probe.records import Measured, TriggerSearch
from adapterscan.probe.refusal_tokens import refusal_tokens
from adapterscan.probe.session import BaseStore, base_key
from adapterscan.probe.timing import Timer
from adapterscan.probe.trigger_search import search
from adapterscan.source import FetchedSource
from adapterscan.static.model import StaticResult

# The search switches the adapter off and on in one model (peft's disable_adapter) and reads its
# LoRA factors (the weight-direction signal); a checkpoint has neither.
CHECKPOINT_NO_SEARCH = ("not run on a full checkpoint: the trigger search needs the adapter "
                        "switched off and on in one model and its LoRA factors; the drift "
                        "rules (AS601-AS604) ran on the checkpoint itself")


class Runner:
    def __init__(self, *, src: FetchedSource, static: StaticResult, base: ResolvedBase,
                 emit: Emitter, opts: ProbeOptions, suites: PromptSuites, judge: RefusalJudge,
                 say: Progress, cache: BaseStore | None = None,
                 merged: MergedModel | None = None) -> None:
        self.src, self.static, self.base, self.emit = src, static, base, emit
        self.opts, self.suites, self.judge, self.say = opts, suites, judge, say
        self.cache = cache
        self.merged = merged or AdapterMerge(src.root, static.adapter)

    def run(self) -> JSONValue:
        o, emit, label = self.opts, self.emit, self.base.label
        if o.threads:
            torch.set_num_threads(o.threads)
        torch.manual_seed(o.seed)
        timer = Timer()
        t = time.perf_counter()
        self.say(f"loading base model {label}")
        lm = load_base(self.base, device=o.device, dtype=o.dtype)
        ctx = Context(lm, o, self.suites, self.judge, sg.middle_layer(lm.model), self.say,
                      timer, label)
        t = timer.add("load_base", t)
        base, ids = self._base_measurement(ctx)
        power = self._power(ctx, base, ids)
        decide.no_power(emit, power, label)
        if power.refusal_unmeasurable:
            # The base does not refuse (or not readably): no drop of refusal can be measured,
            # and the scan is incomplete whatever the merged model does. Stop here rather than
            # pay for generating with the merged model and for the trigger search (on a 135M
            # base on 2 cores: minutes).
            return {"base": label, "device": str(lm.device), "power": power.to_json(),
                    "stopped": "after the base pass: the base has no power (AS607)",
                    "timings": dict(timer.spans)}
        peft_model, model = self._merged_model(lm, timer)
        merged = ctx.measure(model, "merged")
        signals, drift = compare(ctx, base, merged, ids)
        decide.drift(emit, drift)
        tok = lm.tokenizer
        result: dict[str, JSONValue] = {
            "base": label, "device": str(lm.device),
            "dtype": str(lm.dtype).removeprefix("torch."), "layer": ctx.layer,
            "n": {s: len(ctx.prompts(s)) for s in ctx.active},
            "refusal_start_tokens": [str(tok.decode([i])) for i in ids[:20]],
            "signals": signals,
        }
        result["power"] = power.to_json()
        if o.trigger_search and peft_model is None:
            result["triggers"] = decide.triggers(emit, TriggerSearch(
                {"searched": False, "reason": CHECKPOINT_NO_SEARCH}), label)
        elif o.trigger_search:
            t = time.perf_counter()
            found = search(ctx, peft_model, merged, ids, self.src, self.static.trigger_candidates,
                           emit.num(TRIGGER, "screen_min_drop"))
            result["triggers"] = decide.triggers(emit, found, label)
            timer.add("trigger_search", t)
        result["timings"] = dict(timer.spans)
        return result

    def _merged_model(self, lm: LoadedModel, timer: Timer) -> tuple[Any | None, Any]:
        """The PeftModel (None for a checkpoint) and the model to measure as "merged"."""
        t = time.perf_counter()
        if isinstance(self.merged, CheckpointLoad):
            self.say("loading the checkpoint")
            # The base's measurements are taken: its weights go before the checkpoint's come,
            # so that one model's weights are in memory at a time, as with an adapter.
            lm.model = None
            model = load_checkpoint(lm, self.merged.folder)
            timer.add("load_checkpoint", t)
            return None, model
        self.say("applying and merging the adapter")
        peft_model = apply_adapter(lm, self.merged.root, self.merged.adapter)
        timer.add("apply_merge", t)
        return peft_model, peft_model

    def _base_measurement(self, ctx: Context) -> tuple[Measured, list[int]]:
        """The base's measurements, from the caller's cache when the same base, prompts, judge
        and options were measured before."""
        o, lm = self.opts, ctx.lm
        key = None
        if self.cache is not None:
            key = base_key(lm.folder, {
                # The bytes the fetch stage hashed: a cache on disk must not trust mtimes.
                "digests": sorted((f.path, f.sha256) for f in self.base.files),
                "suites": self.suites, "judge": type(self.judge).__qualname__,
                "device": str(lm.device), "dtype": str(lm.dtype),
                "batch": o.batch_size, "tokens": o.max_new_tokens, "generate": o.generate,
                "layer": ctx.layer,
                # A cache on disk outlives upgrades: measuring code or libraries that changed
                # would compare stale base numbers with fresh merged ones.
                "versions": [__version__, torch.__version__, transformers.__version__]})
            hit: Any = self.cache.get(key)
            if hit is not None:
                self.say("base: measurements reused from this run")
                return hit  # type: ignore[no-any-return]
        measured = ctx.measure(lm.model, "base")
        result = (measured, refusal_tokens(ctx, measured))
        if self.cache is not None and key is not None:
            self.cache.put(key, result)
        return result

    def _power(self, ctx: Context, base: Measured, ids: list[int]) -> PowerCheck:
        """Whether the base refuses enough, and readably, for a drop to be measurable."""
        emit = self.emit
        labels = [lab for s in ctx.active for lab in base.labels.get(s, [])]
        other = sum(lab == "other" for lab in labels) / len(labels) if labels else None
        return assess(ctx.refused(base, ["harmful"], ids), ctx.refused(base, ctx.harmless, ids),
                      other, min_base_refusal=emit.num(NO_POWER, "min_base_refusal"),
                      min_drop=emit.num(REFUSAL_DROP, "min_drop"),
                      alpha=emit.num(REFUSAL_DROP, "alpha"),
                      max_unreadable=emit.num(NO_POWER, "max_unreadable"),
                      max_base_over_refusal=emit.num(NO_POWER, "max_base_over_refusal"))
