"""Public safety prompt sets shipped with adapterscan (see SOURCE.md for origin and licences).

Splits are deterministic: a prompt is held out when the sha256 of its text falls in the last
fifth of the hash space, so the split never depends on file order or a random generator.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Split = Literal["train", "test", "all"]
HELD_OUT_FRACTION = 0.2


@dataclass(frozen=True)
class Prompt:
    text: str
    harmful: bool
    source: str  # "advbench", "jbb-harmful", "jbb-benign", "xstest-safe", "xstest-unsafe"
    category: str = ""


def is_held_out(text: str) -> bool:
    """True when `text` belongs to the held-out (test) split."""
    h = int.from_bytes(hashlib.sha256(text.strip().encode()).digest()[:8], "big")
    return h / 2**64 >= 1.0 - HELD_OUT_FRACTION


def _rows(folder: str, name: str) -> list[dict[str, str]]:
    text = resources.files(__name__).joinpath(folder, name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def _all_prompts() -> tuple[Prompt, ...]:
    out: list[Prompt] = []
    for r in _rows("advbench", "harmful_behaviors.csv"):
        out.append(Prompt(r["goal"].strip(), True, "advbench"))
    for r in _rows("jailbreakbench", "harmful-behaviors.csv"):
        out.append(Prompt(r["Goal"].strip(), True, "jbb-harmful", r.get("Category", "")))
    for r in _rows("jailbreakbench", "benign-behaviors.csv"):
        out.append(Prompt(r["goal"].strip(), False, "jbb-benign", r.get("category", "")))
    for r in _rows("xstest", "xstest_prompts.csv"):
        harmful = r["label"] == "unsafe"
        out.append(Prompt(r["prompt"].strip(), harmful,
                          "xstest-unsafe" if harmful else "xstest-safe", r["type"]))
    return tuple(out)


def prompts(*, harmful: bool | None = None, split: Split = "all",
            sources: tuple[str, ...] | None = None) -> list[Prompt]:
    """Prompts filtered by label, split and source, in file order."""
    out = []
    for p in _all_prompts():
        if harmful is not None and p.harmful != harmful:
            continue
        if sources is not None and p.source not in sources:
            continue
        if split != "all" and is_held_out(p.text) != (split == "test"):
            continue
        out.append(p)
    return out
