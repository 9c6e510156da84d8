"""`adapterscan rules list|explain|docs`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapterscan.cli.common import fail, run_or_exit
from adapterscan.rules.docgen import check_docs, render_rule, write_docs
from adapterscan.rules.loader import load_ruleset

app = typer.Typer(help="List and explain the detection rules.", no_args_is_help=True)


@app.command("list")
def list_rules(stage: Annotated[str | None, typer.Option(help="only this stage")] = None) -> None:
    """List every rule with its id, name, severity and summary."""
    ruleset = run_or_exit(load_ruleset)
    from rich.table import Table

    table = Table(title=f"adapterscan rules (rule set {ruleset.digest[:12]})")
    for col in ("id", "name", "stage", "severity", "confidence", "summary"):
        table.add_column(col, overflow="fold")
    for r in ruleset.rules:
        if stage and r.stage != stage:
            continue
        table.add_row(r.id, r.name, r.stage, r.severity.value, r.confidence.value, r.summary)
    Console(highlight=False).print(table)


@app.command("explain")
def explain(rule_id: Annotated[str, typer.Argument(help="a rule id such as AS201 or a name")]
            ) -> None:
    """Show a rule's documentation."""
    ruleset = run_or_exit(load_ruleset)
    key = rule_id.strip()
    matches = [r for r in ruleset.rules if key.upper() == r.id or key == r.name]
    if not matches:
        fail(f"no rule {rule_id!r}; `adapterscan rules list` shows them all")
    from rich.markdown import Markdown  # ~60 ms of markdown parser: only for this command

    Console(highlight=False).print(Markdown(render_rule(matches[0])))


@app.command("docs")
def docs(out: Annotated[Path, typer.Option(help="docs/rules folder")] = Path("docs/rules"),
         check: Annotated[bool, typer.Option(help="fail when the committed docs are stale")]
         = False) -> None:
    """Generate docs/rules/ASxxx.md from signatures/ (or check they are current)."""
    ruleset = run_or_exit(load_ruleset)
    if check:
        stale = check_docs(ruleset, out)
        if stale:
            fail("stale rule docs (run `adapterscan rules docs`): " + ", ".join(stale))
        return
    write_docs(ruleset, out)
