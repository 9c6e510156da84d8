"""The probe stage: merge the adapter into a base model and measure what it does to safety.

Called by adapterscan.pipeline (signature fixed). Order of work, chosen so that one copy of the
base weights suffices: measure the pristine base, inject + merge the adapter in place, measure the
merged model, run the trigger search, then unmerge to check the best triggers on the base.
Every number reported is drift (merged minus base) on the same prompts, with a paired test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapterscan.emit import Emitter
from adapterscan.errors import ProbeError
from adapterscan.findings import JSONValue
from adapterscan.probe.judge import KeywordJudge, RefusalJudge
from adapterscan.probe.prompts import PromptSuites, capped, default_suites
from adapterscan.probe.session import BaseCache
from adapterscan.source import FetchedSource
from adapterscan.static.model import StaticResult


@dataclass(frozen=True)
class ProbeOptions:
    device: str = "auto"  # auto | cpu | cuda[:N]
    dtype: str = "auto"  # auto (fp32 on CPU, bf16/fp16 on CUDA) | float32 | float16 | bfloat16
    max_prompts: int = 96  # per suite
    batch_size: int = 32
    max_new_tokens: int = 32
    seed: int = 0
    generate: bool = True  # greedy generation + judge (confirmation); off = first-token only
    trigger_search: bool = True
    max_trigger_candidates: int = 20
    trigger_prompts: int = 16  # prompts in each of the two disjoint confirmation sets
    trigger_screen_prompts: int = 8  # screening / inversion prompts (disjoint from both sets)
    trigger_confirm: int = 3
    inversion: bool = True  # search the vocabulary for triggers nobody listed
    inversion_max_len: int = 6
    inversion_k: int = 16
    inversion_beam: int = 2
    inversion_budget_s: float = 40.0
    extraction: bool = True  # sample the user turn for leaked triggers
    threads: int | None = None  # torch CPU threads; None leaves torch's setting alone
    judge: RefusalJudge | None = None
    suites: PromptSuites | None = None  # override the shipped held-out suites
    hub_endpoint: str | None = None
    hub_token: str | None = None
    hub_revision: str | None = None


Progress = Callable[[str], None]


def run_probe(src: FetchedSource, static: StaticResult, base: str, emit: Emitter,
              options: ProbeOptions | None, progress: Callable[[str], None] | None,
              cache: BaseCache | None = None) -> JSONValue:
    """Measure the adapter's behavioural drift against `base`; emit AS6xx findings.

    Raises ProbeError when the probe cannot run (base missing, adapter does not fit the base);
    the pipeline records that as a stage error, so the scan is incomplete rather than clean.
    """
    from adapterscan.probe.runner import Runner

    opts = options or ProbeOptions()
    if opts.max_prompts < 4 or opts.batch_size < 1 or opts.max_new_tokens < 1:
        raise ProbeError("probe options out of range (max_prompts >= 4, batch_size >= 1)")
    suites = (capped(opts.suites, opts.max_prompts, opts.seed) if opts.suites is not None
              else default_suites(opts.max_prompts, opts.seed))
    if len(suites.harmful) < 4 or len(suites.harmless) < 4:
        raise ProbeError("the prompt suites are too small to measure drift (need 4+ each)")
    runner = Runner(src=src, static=static, base=base, emit=emit, opts=opts, suites=suites,
                    judge=opts.judge or KeywordJudge(), say=progress or _quiet, cache=cache)
    return runner.run()


def _quiet(_: str) -> None:
    return None


@dataclass
class Timer:
    spans: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.spans[name] = round(self.spans.get(name, 0.0) + now - since, 4)
        return now


def as_json(value: Any) -> JSONValue:
    """Narrow helper for mypy: values built from JSON-safe parts."""
    return value  # type: ignore[no-any-return]
