"""The probe's options, kept free of torch so that the CLI can build them before a scan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapterscan.probe.judge import RefusalJudge
from adapterscan.probe.prompts import PromptSuites

Progress = Callable[[str], None]


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
    growth: bool = True  # grow strings from the tokens the adapter's weight directions read
    growth_budget_s: float = 15.0
    target_inversion: bool = True  # invert fixed answers (payloads) the adapter installed
    threads: int | None = None  # torch CPU threads; None leaves torch's setting alone
    judge: RefusalJudge | None = None
    suites: PromptSuites | None = None  # override the shipped held-out suites
