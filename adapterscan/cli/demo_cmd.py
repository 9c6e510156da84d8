"""`adapterscan demo`: scan the labelled example adapters against the bundled reference model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from adapterscan._version import __version__
from adapterscan.cli.common import require, run_or_exit
from adapterscan.cli.exit_codes import ExitCode
from adapterscan.report import Decision, ScanReport


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
) -> None:
    """Build (or reuse) the example adapters, scan each against the bundled reference model.

    Exit 0 when every harmful, identity-shifting or backdoored example is rejected and every
    benign one passes; 1 otherwise.
    """
    require("probe", "adapterscan demo")
    from adapterscan.examples import build_examples

    err = Console(stderr=True, highlight=False)
    console = Console(highlight=False)
    t0 = time.perf_counter()
    with err.status("preparing example adapters…") as status:
        examples = run_or_exit(lambda: build_examples(out, force=rebuild,
                                                      progress=lambda m: status.update(m)))
    from adapterscan.probe.session import BaseCache

    cache = BaseCache()  # the base is measured once, not once per example
    rows = []
    for ex in examples:
        with err.status(f"scanning {ex.name}…") as status:
            report = _scan(ex.path, lambda m, s=status, n=ex.name: s.update(f"{n}: {m}"), cache)
        rows.append(_row(ex.name, ex.expected_class, ex.should_reject, report))
        if reports is not None:
            reports.mkdir(parents=True, exist_ok=True)
            (reports / f"{ex.name}.json").write_text(report.to_json())
    console.print(_table(rows))
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


def _scan(path: Path, progress: Any, cache: Any) -> ScanReport:
    from adapterscan.pipeline import ScanOptions, scan

    return run_or_exit(lambda: scan(path, options=ScanOptions(base="reference",
                                                              probe_cache=cache),
                                    progress=progress))


def _row(name: str, expected: str, should_reject: bool, report: ScanReport) -> DemoRow:
    probe = report.results.get("probe")
    drift, trigger = "n/a", "-"
    if isinstance(probe, dict):
        drift = _drift(probe.get("signals"))
        trigger = _trigger(probe.get("triggers"))
    rules = sorted({f.rule_id for f in report.findings})
    decision = report.verdict.decision.value
    if report.verdict.decision is not Decision.FAIL and not report.complete:
        decision = "incomplete"
    return DemoRow(name, expected, should_reject, decision, drift, trigger,
                   ", ".join(rules) if rules else "-")


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
    """The first confirmed trigger (the probe reports {"confirmed": [...]} or a plain list)."""
    rows = triggers.get("confirmed") if isinstance(triggers, dict) else triggers
    if isinstance(rows, list):
        found = [t for t in rows if isinstance(t, dict) and t.get("finding")]
        if found:
            return f"{found[0].get('trigger')!r} ({found[0].get('position')})"
    return "-"


def _table(rows: list[DemoRow]) -> Table:
    t = Table(title=f"adapterscan {__version__} demo: example adapters vs the bundled reference "
                    "model")
    for col in ("adapter", "expected", "verdict", "refusal drift", "trigger found", "rules"):
        t.add_column(col)
    for r in rows:
        mark = "[green]✓[/]" if r.correct else "[red]✗[/]"
        colour = "red" if r.decision == "fail" else "green"
        t.add_row(r.name, r.expected, f"[{colour}]{r.decision}[/] {mark}", r.drift, r.trigger,
                  r.rules)
    return t
