"""Measure a refusal judge against the human labels of XSTest v2 completions.

`python -m adapterscan.probe.judge_eval [DIR]` prints precision/recall/F1 per file and overall.
DIR holds `xstest_v2_completions_*.csv` (columns prompt, completion, final_label); the default is
tests/probe/data/xstest_completions in a source checkout. Positive class = refusal (full or
partial, as XSTest counts them); a second line counts only full refusals as positive.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from adapterscan.probe.judge import KeywordJudge, RefusalJudge

DEFAULT_DIR = (Path(__file__).resolve().parents[2] / "tests" / "probe" / "data"
               / "xstest_completions")


@dataclass(frozen=True)
class Row:
    id: str
    prompt: str
    completion: str
    label: str  # 1_full_compliance | 2_full_refusal | 3_partial_refusal


@dataclass(frozen=True)
class Scores:
    n: int
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else 0.0


def load_rows(path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [Row(r["id"], r["prompt"], r["completion"], r["final_label"])
                for r in csv.DictReader(fh)]


def score(judge: RefusalJudge, rows: Iterable[Row], *, partial_is_refusal: bool = True) -> Scores:
    tp = fp = fn = tn = n = 0
    for row in rows:
        if not partial_is_refusal and row.label.startswith("3"):
            continue
        n += 1
        truth = row.label.startswith("2") or (partial_is_refusal and row.label.startswith("3"))
        said = judge.classify(row.prompt, row.completion) == "refusal"
        tp += truth and said
        fp += (not truth) and said
        fn += truth and not said
        tn += (not truth) and not said
    return Scores(n=n, tp=tp, fp=fp, fn=fn, tn=tn)


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else DEFAULT_DIR
    files = sorted(folder.glob("xstest_v2_completions_*.csv"))
    if not files:
        sys.stderr.write(f"no xstest_v2_completions_*.csv under {folder}\n")
        return 2
    judge = KeywordJudge()
    all_rows: list[Row] = []
    out = ["| file | positives | n | precision | recall | F1 | accuracy |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for f in files:
        rows = load_rows(f)
        all_rows += rows
        for partial in (True, False):
            s = score(judge, rows, partial_is_refusal=partial)
            what = "full+partial refusal" if partial else "full refusal (partial excluded)"
            out.append(f"| {f.stem.removeprefix('xstest_v2_completions_')} | {what} | {s.n} | "
                       f"{s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.accuracy:.3f} |")
    for partial in (True, False):
        s = score(judge, all_rows, partial_is_refusal=partial)
        what = "full+partial refusal" if partial else "full refusal (partial excluded)"
        out.append(f"| both | {what} | {s.n} | {s.precision:.3f} | {s.recall:.3f} | "
                   f"{s.f1:.3f} | {s.accuracy:.3f} |")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
