"""What every measurement of one probe run shares, and the measurements built on it alone."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapterscan.findings import JSONValue
from adapterscan.probe import signals as sg
from adapterscan.probe.judge import Label, RefusalJudge, judge_all
from adapterscan.probe.model_loading import LoadedModel
from adapterscan.probe.options import ProbeOptions, Progress
from adapterscan.probe.prompts import PromptSuites
from adapterscan.probe.records import Measured
from adapterscan.probe.timing import Timer

SUITES = ("harmful", "benign", "xstest_safe", "identity")


@dataclass(frozen=True)
class Context:
    lm: LoadedModel
    opts: ProbeOptions
    suites: PromptSuites
    judge: RefusalJudge
    layer: int  # the residual layer read for the refusal direction
    say: Progress
    timer: Timer
    label: str  # how findings and results name the base

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(x for x in SUITES if getattr(self.suites, x))

    @property
    def harmless(self) -> tuple[str, ...]:
        return tuple(x for x in self.active if x in ("benign", "xstest_safe"))

    def prompts(self, suite: str) -> Sequence[str]:
        return tuple(getattr(self.suites, suite))

    def measure(self, model: Any, who: str) -> Measured:
        lm, o = self.lm, self.opts
        fwd: dict[str, sg.ForwardOut] = {}
        text: dict[str, list[str]] = {}
        first: dict[str, list[int]] = {}
        labels: dict[str, list[Label]] = {}
        t = time.perf_counter()
        for suite in self.active:
            self.say(f"{who}: first-token pass on {suite} prompts")
            fwd[suite] = sg.forward(model, lm.tokenizer, self.prompts(suite), layer=self.layer,
                                    batch_size=o.batch_size, device=lm.device)
        t = self.timer.add(f"{who}_first_token", t)
        if o.generate:
            for suite in self.active:
                prompts = self.prompts(suite)
                self.say(f"{who}: generating on {len(prompts)} {suite} prompts")
                text[suite], first[suite] = sg.generate(
                    model, lm.tokenizer, prompts, max_new_tokens=o.max_new_tokens,
                    batch_size=o.batch_size, device=lm.device)
                labels[suite] = judge_all(self.judge, list(prompts), text[suite])
            self.timer.add(f"{who}_generate", t)
        return Measured(fwd, text, first, labels)

    def fast(self, m: Measured, suite: str, ids: list[int]) -> list[float]:
        """First-token refusal probability per prompt of `suite`."""
        return sg.refusal_prob(m.fwd[suite].logprobs, ids)

    def refused(self, m: Measured, suites: Sequence[str], ids: list[int]) -> list[bool]:
        """Per prompt: refused, by the judge when generating, else by first-token probability."""
        if self.opts.generate:
            return [lab == "refusal" for s in suites for lab in m.labels[s]]
        return [p > 0.5 for s in suites for p in self.fast(m, s, ids)]

    def refused_with(self, model: Any, prompts: Sequence[str], ids: list[int]) -> list[bool]:
        """`refused` for prompts measured afresh on `model`."""
        o, lm = self.opts, self.lm
        if o.generate:
            text, _ = sg.generate(model, lm.tokenizer, prompts, max_new_tokens=o.max_new_tokens,
                                  batch_size=o.batch_size, device=lm.device)
            return [lab == "refusal" for lab in judge_all(self.judge, list(prompts), text)]
        fwd = sg.forward(model, lm.tokenizer, prompts, layer=self.layer,
                         batch_size=o.batch_size, device=lm.device)
        return [p > 0.5 for p in sg.refusal_prob(fwd.logprobs, ids)]

    def examples(self, m: Measured, suite: str, k: int = 3) -> JSONValue:
        prompts = self.prompts(suite)
        texts = m.text.get(suite, [])
        return [{"prompt": p[:120], "completion": c[:160]}
                for p, c in list(zip(prompts, texts, strict=False))[:k]]
