"""The probe stage: merge the adapter into a base model and measure what it does to safety.

Called by adapterscan.pipeline (signature fixed). Order of work, chosen so that one copy of the
base weights suffices: measure the pristine base, inject + merge the adapter in place, measure the
merged model, run the trigger search, then unmerge to check the best triggers on the base.
A full checkpoint is loaded in place of the inject + merge (the base's weights released first)
and has no trigger search. Every number reported is drift (merged minus base) on the same
prompts, with a paired test.
"""

from __future__ import annotations

from adapterscan.emit import Emitter
from adapterscan.errors import ProbeError
from adapterscan.fetch.base_model import ResolvedBase
from adapterscan.findings import JSONValue
from adapterscan.probe.judge import KeywordJudge
from adapterscan.probe.merged import MergedModel
from adapterscan.probe.model_loading import RESOLVE_HINT
from adapterscan.probe.options import ProbeOptions, Progress
from adapterscan.probe.prompts import capped, default_suites
from adapterscan.probe.runner import Runner
from adapterscan.probe.session import BaseStore
from adapterscan.source import FetchedSource
from adapterscan.static.model import StaticResult

__all__ = ["ProbeOptions", "Progress", "run_probe"]


def run_probe(src: FetchedSource, static: StaticResult, base: ResolvedBase, emit: Emitter,
              options: ProbeOptions | None, progress: Progress | None,
              cache: BaseStore | None = None, merged: MergedModel | None = None) -> JSONValue:
    """Measure the adapter's behavioural drift against `base`; emit AS6xx findings.

    `base` comes from adapterscan.fetch.base_model (resolve_base or local_base): pinned and
    hashed. Raises ProbeError when the probe cannot run (a base given by name, a base that does
    not load, an adapter that does not fit it); the pipeline records that as a stage error, so
    the scan is incomplete rather than clean. `merged` is what is compared with the base: by
    default the adapter in `src` merged into it; `CheckpointLoad` for a full checkpoint.
    """
    if not isinstance(base, ResolvedBase):
        raise ProbeError(f"run_probe needs a resolved base model, not {base!r}",
                         hint=RESOLVE_HINT)
    opts = options or ProbeOptions()
    if opts.max_prompts < 4 or opts.batch_size < 1 or opts.max_new_tokens < 1:
        raise ProbeError("probe options out of range (max_prompts >= 4, batch_size >= 1)")
    suites = (capped(opts.suites, opts.max_prompts, opts.seed) if opts.suites is not None
              else default_suites(opts.max_prompts, opts.seed))
    if len(suites.harmful) < 4 or len(suites.harmless) < 4:
        raise ProbeError("the prompt suites are too small to measure drift (need 4+ each)")
    runner = Runner(src=src, static=static, base=base, emit=emit, opts=opts, suites=suites,
                    judge=opts.judge or KeywordJudge(), say=progress or _quiet, cache=cache,
                    merged=merged)
    return runner.run()


def _quiet(_: str) -> None:
    return None
