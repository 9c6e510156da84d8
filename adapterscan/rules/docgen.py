"""Rule documentation pages generated from signatures/ (docs/rules/ASxxx.md and an index)."""

from __future__ import annotations

from pathlib import Path

from adapterscan.rules.model import Rule, RuleSet


def render_rule(rule: Rule) -> str:
    lines = [
        f"# {rule.id} {rule.name}",
        "",
        f"{rule.summary}",
        "",
        f"- **Stage:** {rule.stage}",
        f"- **Check:** `{rule.check}`",
        f"- **Default severity:** {rule.severity.value}",
        f"- **Confidence:** {rule.confidence.value}",
    ]
    if rule.params:
        lines.append(f"- **Parameters** (a policy's `[params.{rule.id}]` overrides them):")
        lines.extend(f"  - `{k}` = `{v!r}`" for k, v in sorted(rule.params.items()))
    lines += ["", "## What it detects", "", rule.docs.what.strip(), "",
              "## Why it matters", "", rule.docs.why.strip(), "",
              "## Example", "", rule.docs.example.strip(), "", "## References", ""]
    lines += [f"- {ref}" for ref in rule.docs.references] or ["- (none)"]
    return "\n".join(lines) + "\n"


def render_index(ruleset: RuleSet) -> str:
    lines = ["# Rules", "", "Generated from `signatures/rules/` by `adapterscan rules docs`.", "",
             "| id | name | stage | severity | summary |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| [{r.id}]({r.id}.md) | {r.name} | {r.stage} | {r.severity.value} | "
              f"{r.summary} |" for r in ruleset.rules]
    return "\n".join(lines) + "\n"


def expected_docs(ruleset: RuleSet) -> dict[str, str]:
    pages = {f"{r.id}.md": render_rule(r) for r in ruleset.rules}
    pages["README.md"] = render_index(ruleset)
    return pages


def write_docs(ruleset: RuleSet, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pages = expected_docs(ruleset)
    for old in out.glob("AS*.md"):
        if old.name not in pages:
            old.unlink()
    for name, text in pages.items():
        (out / name).write_text(text, "utf-8")


def check_docs(ruleset: RuleSet, out: Path) -> list[str]:
    """Names of pages that are missing, different or left over."""
    pages = expected_docs(ruleset)
    stale = [n for n, t in pages.items()
             if not (out / n).is_file() or (out / n).read_text("utf-8") != t]
    stale += [p.name for p in out.glob("AS*.md") if p.name not in pages]
    return sorted(stale)
