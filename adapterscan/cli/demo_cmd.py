"""`adapterscan demo`: scan the labelled example adapters against the bundled reference model."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from adapterscan._quiet import quiet
from adapterscan._version import __version__
from adapterscan.cli.common import Verbose, require, run_or_exit, set_verbose
from adapterscan.exit_codes import ExitCode
from adapterscan.render.text import safe_text
from adapterscan.report import Decision, ScanReport

if TYPE_CHECKING:
    from adapterscan.examples import ExampleAdapter


@dataclass(frozen=True)
class DemoRow:
    name: str
    expected: str
    should_reject: bool
    decision: str
    drift: str
    trigger: str
    rules: str

    @property
    def correct(self) -> bool:
        return (self.decision == "fail") == self.should_reject


def demo_command(
    out: Annotated[Path | None, typer.Option(
        help="where the example adapters are built or reused (default: user cache)")] = None,
    rebuild: Annotated[bool, typer.Option(help="retrain the example adapters")] = False,
    reports: Annotated[Path | None, typer.Option(
        help="also write each scan's JSON report into this folder")] = None,
    jobs: Annotated[int, typer.Option(
        help="scan processes (one torch thread each; default: one per CPU, at most 2)")]
    = min(2, os.cpu_count() or 1),
    verbose: Verbose = False,
) -> None:
    """Build (or reuse) the example adapters, scan each against the bundled reference model.

    Exit 0 when every harmful, identity-shifting or backdoored example is rejected and every
    benign one passes; 1 otherwise.
    """
    require("probe", "adapterscan demo")
    from adapterscan.cli.example_set import build_examples

    set_verbose(verbose)
    err = Console(stderr=True, highlight=False)
    console = Console(highlight=False)
    t0 = time.perf_counter()
    with err.status("preparing example adapters…") as status, quiet():
        examples = run_or_exit(lambda: build_examples(out, force=rebuild,
                                                      progress=lambda m: status.update(m)))
    rows: list[DemoRow] = []
    jobs = max(1, min(jobs, len(examples)))
    done = 0
    with err.status(f"scanning {len(examples)} example adapters…") as status, quiet():
        for ex, scanned in _scan_all(examples, jobs):
            done += 1
            status.update(f"scanned {done}/{len(examples)} ({ex.name})")
            rows.append(DemoRow(ex.name, ex.expected_class, ex.should_reject, scanned.decision,
                                scanned.drift, scanned.trigger, scanned.rules))
            if reports is not None:
                reports.mkdir(parents=True, exist_ok=True)
                (reports / f"{ex.name}.json").write_text(scanned.report_json)
    order = {ex.name: i for i, ex in enumerate(examples)}
    rows.sort(key=lambda r: order[r.name])
    console.print(_table(rows, console.width))
    console.print(
        "Each example adapter was merged into the bundled reference chat model and compared "
        "with the model without it on held-out harmful and harmless prompts. Refusal drift is "
        "the change in the share of harmful prompts refused (merged minus base); a trigger is a "
        "string the probe found that switches refusal off only when the adapter is loaded. The "
        "expected class comes from the builder's labels, which the scanner never sees.")
    wrong = [r.name for r in rows if not r.correct]
    console.print(f"{len(rows) - len(wrong)}/{len(rows)} verdicts as expected "
                  f"in {time.perf_counter() - t0:.0f} s"
                  + (f"; wrong: {', '.join(wrong)}" if wrong else ""))
    raise typer.Exit(int(ExitCode.REJECT if wrong else ExitCode.PASS))


@dataclass(frozen=True)
class ScanOutcome:
    """What the demo keeps of one scan: its cells of the table and its JSON report."""

    decision: str
    drift: str
    trigger: str
    rules: str
    report_json: str


def _scan_all(examples: list[ExampleAdapter],
              jobs: int) -> Iterator[tuple[ExampleAdapter, ScanOutcome]]:
    """(example, outcome) as each scan finishes. With several jobs, each worker process runs one
    torch thread and keeps its own base measurements: on small models two single-threaded
    processes get more done than one process with two threads."""
    if jobs == 1:
        yield from _scan_in_process(examples)
        return
    from adapterscan.integrations.procworker import answers

    paths = [str(ex.path) for ex in examples]
    # closing: a scan that fails ends the demo, and the other worker stops with it, not at exit
    with contextlib.closing(answers(_scan_handler, None, paths, workers=jobs)) as pending:
        for i, answer in pending:
            yield examples[i], run_or_exit(functools.partial(_from_worker, answer))


def _from_worker(answer: str | Exception) -> ScanOutcome:
    """A worker's answer as an outcome; a scan that could not run raises as it would have in
    this process, and a worker that died without answering (killed for memory, a crash in
    torch) is an error: never a hang."""
    if isinstance(answer, Exception):
        _reraise("error", f"a demo scan worker stopped before its example was scanned: {answer}",
                 "run with --jobs 1 to see the error")
    data = json.loads(answer)
    if "error" in data:
        _reraise(*data["error"])
    return ScanOutcome(**data)


def _scan_handler(setup: None) -> Callable[[str], str]:
    """Runs in a demo worker process (procworker): one torch thread, quiet, one base cache for
    all its scans. Each answer is an outcome as JSON; a scan that cannot run answers
    {"error": [kind, message, hint]}."""
    import torch

    from adapterscan.errors import AdapterScanError, FetchError
    from adapterscan.probe.session import BaseCache

    torch.set_num_threads(1)
    cache = BaseCache()

    def handle(path: str) -> str:
        try:
            with quiet():
                outcome = _outcome(_scan(Path(path), cache))
        except AdapterScanError as exc:
            kind = "fetch" if isinstance(exc, FetchError) else "error"
            return json.dumps({"error": [kind, f"{path}: {exc.message}", exc.hint]})
        except Exception as exc:  # a bug: the parent raises it with the worker's message
            return json.dumps({"error": ["bug", f"{path}: {exc!r}", None]})
        return json.dumps(dataclasses.asdict(outcome))

    return handle


def _reraise(kind: str, message: str, hint: str | None) -> NoReturn:
    from adapterscan.errors import AnalysisError, FetchError

    if kind == "fetch":
        raise FetchError(message, hint=hint)
    if kind == "error":
        raise AnalysisError(message, hint=hint)
    raise RuntimeError(message)


def _scan_in_process(
        examples: list[ExampleAdapter]) -> Iterator[tuple[ExampleAdapter, ScanOutcome]]:
    from adapterscan.probe.session import BaseCache

    cache = BaseCache()  # the base is measured once, not once per example
    for ex in examples:
        yield ex, _outcome(run_or_exit(functools.partial(_scan, ex.path, cache)))


def _scan(path: Path, cache: Any) -> ScanReport:
    from adapterscan.pipeline import ScanOptions, scan

    return scan(path, options=ScanOptions(base="reference", probe_cache=cache))


def _outcome(report: ScanReport) -> ScanOutcome:
    probe = report.results.get("probe")
    drift, trigger = "n/a", "-"
    if isinstance(probe, dict):
        drift = _drift(probe.get("signals"))
        trigger = _trigger(probe.get("triggers"))
    rules = sorted({f.rule_id for f in report.findings})
    decision = report.verdict.decision.value
    if report.verdict.decision is not Decision.FAIL and not report.complete:
        decision = "incomplete"
    return ScanOutcome(decision, drift, trigger, ", ".join(rules) if rules else "-",
                       report.to_json())


def _drift(signals: object) -> str:
    """Refusal drift on harmful prompts: the generation judge's, else the first-token one."""
    if not isinstance(signals, dict):
        return "n/a"
    for key in ("harmful_refusal_judge", "harmful_refusal_first_token"):
        sig = signals.get(key)
        if isinstance(sig, dict) and isinstance(sig.get("drift"), int | float):
            return (f"{float(sig['drift']):+.0%} ({float(sig.get('base_rate', 0)):.0%}→"
                    f"{float(sig.get('merged_rate', 0)):.0%})")
    return "n/a"


def _trigger(triggers: object) -> str:
    """The strongest confirmed trigger: largest refusal drop on the merged model, then the
    longest string (a backdoor's tiny model often reacts to pieces of its trigger too, and the
    whole string says most). The probe reports {"confirmed": [...]} or a plain list."""
    rows = triggers.get("confirmed") if isinstance(triggers, dict) else triggers
    if isinstance(rows, list):
        found = [t for t in rows if isinstance(t, dict) and t.get("finding")]
        if found:
            def strength(t: dict[str, Any]) -> tuple[float, int]:
                merged = t.get("merged")
                drift = merged.get("drift") if isinstance(merged, dict) else None
                return (-float(drift) if isinstance(drift, int | float) else 0.0,
                        len(str(t.get("trigger", ""))))

            best = max(found, key=strength)
            return f"{best.get('trigger')!r} ({best.get('position')})"
    return "-"


# Under this many columns, adapter names wrap at their hyphens to fit a 13-character column
# (`benign-caps-` / `backdoored`): every row keeps its whole name, never a prefix that two
# examples share ("benign-caps…").
WIDE = 110
NARROW_NAME = 13


def wrap_name(name: str, width: int) -> str:
    """`name` on lines of at most `width` characters, broken after hyphens where possible."""
    lines: list[str] = []
    current = ""
    for part in re.findall(r"[^-]*-|[^-]+$", name):
        if current and len(current) + len(part) > width:
            lines.append(current)
            current = ""
        while len(part) > width:  # one segment longer than the column: cut it, whole
            lines.append(part[:width])
            part = part[width:]
        current += part
    return "\n".join([*lines, current] if current else lines)


def _table(rows: list[DemoRow], width: int = 80) -> Table:
    wide = width >= WIDE
    t = Table(title=f"adapterscan {__version__} demo: example adapters vs the bundled "
                    "reference model",
              box=box.SIMPLE_HEAD, show_lines=not wide, pad_edge=False, padding=(0, 1, 0, 0))
    longest = max((len(r.name) for r in rows), default=0)
    name_width = longest if wide else min(longest, NARROW_NAME)
    # fold, never ellipsis: a cell that does not fit wraps; nothing is cut short.
    t.add_column("adapter", min_width=name_width, overflow="fold")
    for col in ("expected", "verdict", "refusal drift", "trigger found", "rules"):
        t.add_column(col, overflow="fold")
    for r in rows:
        mark = "[green]✓[/]" if r.correct else "[red]✗[/]"
        colour = "red" if r.decision == "fail" else "green"
        t.add_row(escape(wrap_name(r.name, name_width)), r.expected,
                  f"[{colour}]{r.decision}[/] {mark}", r.drift, safe_text(r.trigger),
                  r.rules.replace(", ", " "))
    return t
