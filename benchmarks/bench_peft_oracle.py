"""PEFT as the oracle for the config rules that say what loading does (issue 23 part 1).

Every folder of the real-adapter corpus is loaded with the real `peft` onto a skeleton base
(benchmarks/peft_oracle.py: random-free, download-free, shapes from the adapter) and scanned
with `adapterscan.pipeline.scan`. Two claims are compared per adapter:

- ignored: AS323 orphan-adapter-tensor or AS337 nested-peft-prefix fires <=> PEFT reports
  tensors of the file as unexpected (not loaded);
- overwritten: AS314 full-weight-tensor, AS311 modules-to-save or AS336 task-head fires <=> the
  load writes a non-LoRA module (a head, a modules_to_save copy, a base weight).

Adapters the oracle cannot load (no skeleton, not a transformers model, a failed load) are
listed with the reason and not counted. Environment: ADAPTERSCAN_REAL_ADAPTERS (default
/work/shared/data/real-adapters).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import REAL_ADAPTERS as CORPUS
from benchmarks.common import BenchTable, corpus_missing, real_adapter_folders
from benchmarks.peft_oracle import OracleRecord, oracle

IGNORE_RULES = ("AS323", "AS337")
OVERWRITE_RULES = ("AS314", "AS311", "AS336")


@dataclass(frozen=True)
class Row:
    folder: str
    record: OracleRecord
    fired: tuple[str, ...]  # the compared rules that fired, any severity

    def claims(self, rules: tuple[str, ...]) -> bool:
        return any(r in self.fired for r in rules)

    @property
    def ignored_agrees(self) -> bool:
        return self.claims(IGNORE_RULES) == bool(self.record.ignored)

    @property
    def overwrite_agrees(self) -> bool:
        return self.claims(OVERWRITE_RULES) == bool(self.record.overwritten)


def rules_fired(folder: Path) -> tuple[str, ...]:
    from adapterscan.pipeline import scan

    report = scan(folder)
    wanted = IGNORE_RULES + OVERWRITE_RULES
    return tuple(sorted({f.rule_id for f in report.findings if f.rule_id in wanted}))


def compare(folder: Path) -> Row:
    return Row(folder.name, oracle(folder), rules_fired(folder))


def _verdict(agrees: bool) -> str:
    return "agree" if agrees else "**DISAGREE**"


def _short(items: tuple[str, ...], n: int = 3) -> str:
    shown = ", ".join(f"`{i.removeprefix('base_model.model.')}`" for i in items[:n])
    return (shown + (f" (+{len(items) - n})" if len(items) > n else "")) or "-"


HEADERS = ("folder", "arch", "loaded", "ignored (oracle)", "AS323/AS337", "ignored",
           "overwritten (oracle)", "AS314/AS311/AS336", "overwritten")


def table_row(r: Row) -> tuple[str, ...]:
    rec = r.record
    return (f"`{r.folder}`", rec.architecture, str(len(rec.loaded)), _short(rec.ignored),
            ", ".join(x for x in r.fired if x in IGNORE_RULES) or "-",
            _verdict(r.ignored_agrees), _short(rec.overwritten),
            ", ".join(x for x in r.fired if x in OVERWRITE_RULES) or "-",
            _verdict(r.overwrite_agrees))


def run() -> BenchTable:
    if not CORPUS.is_dir():
        return corpus_missing("PEFT oracle (issue 23 part 1)")
    rows = [compare(p) for p in real_adapter_folders()]
    loaded = [r for r in rows if r.record.ok]
    skipped = [r for r in rows if not r.record.ok]
    counts: Counter[str] = Counter()
    for r in loaded:
        counts["ignored agree" if r.ignored_agrees else "ignored disagree"] += 1
        counts["overwritten agree" if r.overwrite_agrees else "overwritten disagree"] += 1
    summary = ", ".join(f"{k}: {counts[k]}" for k in ("ignored agree", "ignored disagree",
                                                         "overwritten agree",
                                                         "overwritten disagree"))
    not_loaded = "\n".join(f"- `{r.folder}`: {r.record.error} (rules fired: "
                           f"{', '.join(r.fired) or 'none'})" for r in skipped)
    notes = (f"{len(rows)} folders of {CORPUS.name}; the oracle loaded {len(loaded)}. "
             f"{summary}.\n\nNot compared (the oracle did not load them):\n\n{not_loaded}")
    return BenchTable("PEFT as the oracle: what loading does vs what the config rules claim "
                      "(issue 23 part 1)", HEADERS, tuple(table_row(r) for r in loaded), notes)


if __name__ == "__main__":
    print(run().markdown())
