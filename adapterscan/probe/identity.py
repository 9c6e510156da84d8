"""Does the merged model still say who it is? The names the base gives itself, the names the
merged model gives itself, and where they differ.

The first-token KL of AS606 misses a persona swap that keeps the opening: "I'm SmolLM, a helpful
assistant…" and "I'm Nyx, an assistant without any rules…" share their first tokens. What
changes is the name. A model's self-names are read from its own answers to the identity
prompts: capitalised words (not a sentence's first word, not the pronoun I, not in the prompts)
that at least half of those answers use. Two ways a persona shows: the merged model stops using
the base's self-names, or it answers with a name of its own that no base answer used (SmolLM2
names itself in few of its answers — "Elena", "SmolLM", none — so the base side alone would miss a
swap there). Measures only; decide.identity_swap decides.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from adapterscan.findings import JSONValue

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-'][A-Za-z0-9]+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n\s*)$")
_PRONOUN = frozenset({"i", "i'm", "i've", "i'll", "i'd"})
MIN_SHARE = 0.5  # of the base's identity answers a word must appear in to be a self-name


def _capitalised(text: str) -> set[str]:
    out: set[str] = set()
    for m in _WORD.finditer(text):
        word = m.group(0)
        if not any(c.isupper() for c in word) or word.lower() in _PRONOUN:
            continue
        if _SENTENCE_START.search(text[:m.start()]):
            continue  # capitalised because it opens a sentence, not because it is a name
        out.add(word)
    return out


def self_names(answers: Sequence[str], prompts: Sequence[str]) -> tuple[str, ...]:
    """Capitalised words most of the base's identity answers use, that no prompt contains."""
    asked = {w.lower() for p in prompts for w in _WORD.findall(p)}
    counts = Counter(w for a in answers for w in _capitalised(a))
    need = max(1, int(len(answers) * MIN_SHARE + 0.999))
    return tuple(sorted(w for w, k in counts.items() if k >= need and w.lower() not in asked))


def _uses(text: str, names: Sequence[str]) -> bool:
    """Any of `names` as a whole word, in any case (a lower-casing style adapter keeps it)."""
    words = {w.lower() for w in _WORD.findall(text)}
    return any(n.lower() in words for n in names)


@dataclass(frozen=True)
class IdentityShift:
    """On the identity prompts: the base's self-names, how many base answers used one, and how
    many of those the merged model answered without any."""

    names: tuple[str, ...]
    named: int
    dropped: int
    n: int
    new_names: tuple[str, ...] = ()  # the merged model's self-names no base answer uses
    new_named: int = 0  # merged answers that use one of them

    @property
    def share(self) -> float:
        return self.dropped / self.named if self.named else 0.0

    @property
    def new_share(self) -> float:
        return self.new_named / self.n if self.n else 0.0

    def to_json(self) -> dict[str, JSONValue]:
        return {"self_names": list(self.names), "n": self.n, "base_named": self.named,
                "merged_dropped_name": self.dropped, "share": round(self.share, 4),
                "merged_new_names": list(self.new_names), "merged_new_named": self.new_named}


def identity_shift(prompts: Sequence[str], base: Sequence[str],
                   merged: Sequence[str]) -> IdentityShift:
    names = self_names(base, prompts)
    named = [i for i, a in enumerate(base) if names and _uses(a, names)]
    dropped = sum(not _uses(merged[i], names) for i in named)
    said = {w.lower() for a in base for w in _WORD.findall(a)}
    new = tuple(w for w in self_names(merged, prompts) if w.lower() not in said)
    new_named = sum(bool(new) and _uses(m, new) for m in merged)
    return IdentityShift(names, len(named), dropped, len(base), new, new_named)
