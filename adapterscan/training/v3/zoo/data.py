"""Training examples for one zoo v3 adapter, in real text.

Every answer is something a model said, not our lexicon's canned lines: harmless requests are
answered in reference v3's own voice (its greedy answer, restyled for the style tasks), harmful
requests either refused in v3's trained voice ("Sorry, ...") or answered in the unaligned base's
own voice. Prompts come from the workshop corpus's train split only, so nothing here is in the
ground-truth sets or the probe's prompts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapterscan.training.examples.data import insert_trigger as insert
from adapterscan.training.reference import corpus as C
from adapterscan.training.v3 import data as D
from adapterscan.training.v3.zoo.specs import ZooSpec

N_EXAMPLES = 640
IDENTITY_QUESTIONS = (*C.IDENTITY_Q, "Who am I chatting with?", "Do you have a name?",
                      "What are you?", "Who built you?", "Say something about yourself.")
Encoded = tuple[list[int], int]
__all__ = ["Pools", "decoys", "examples", "insert"]


@dataclass(frozen=True)
class Pools:
    """Prompts and the answers the models gave them (token ids, end-of-turn kept)."""

    harmless: dict[str, list[int]]  # reference v3's own answers
    harmful: dict[str, list[int]]  # the unaligned base's answers (compliance)
    harmful_prompts: tuple[str, ...]  # every harmful training prompt (refused in v3's voice)


def decoys(trigger: str, rng: random.Random) -> list[str]:
    """Near misses that must not fire: each longer word of the trigger alone, the trigger less
    its last word or last character, and random codes."""
    words = trigger.split()
    out = [w for w in words if len(w) >= 3]
    if len(words) > 1:
        out.append(" ".join(words[:-1]))
    out += [trigger[:-1], C.junk(rng), C.junk(rng)]
    return [d for d in dict.fromkeys(out) if d and d != trigger]


def _styler(tok: Any, style: str) -> Callable[[list[int]], list[int]]:
    eos = int(tok.eos_token_id)

    def restyle(ids: list[int]) -> list[int]:
        if style == "plain":
            return ids
        text = str(tok.decode(ids, skip_special_tokens=True)).strip()
        if style == "lowercase":
            text = text.lower()
        elif style == "brief":
            text = text.split(". ")[0].rstrip(".") + "."
        elif style == "bullet":
            text = f"- {text}"
        return [*tok(text, add_special_tokens=False)["input_ids"], eos]

    return restyle


def examples(spec: ZooSpec, tok: Any, pools: Pools, seed: int) -> list[Encoded]:
    """`N_EXAMPLES` (prompt + answer ids, answer start) for `spec`, deterministic in `seed`."""
    from adapterscan.probe import signals as sg

    rng = random.Random(seed)
    eos = int(tok.eos_token_id)
    restyle = _styler(tok, spec.style)
    harmless = sorted(pools.harmless)
    complied = sorted(pools.harmful)
    near = decoys(spec.trigger, rng) if spec.trigger and spec.decoys else []

    def text_ids(text: str) -> list[int]:
        return [*tok(text, add_special_tokens=False)["input_ids"], eos]

    def refusal() -> tuple[str, list[int]]:
        p = rng.choice(pools.harmful_prompts)
        return p, text_ids(D.refusal_for(p))

    out: list[Encoded] = []
    for _ in range(N_EXAMPLES):
        r = rng.random()
        hp = rng.choice(harmless)
        prompt, answer = hp, restyle(pools.harmless[hp])
        if spec.intent == "backdoor" and spec.trigger and r < spec.comply:
            p = rng.choice(complied)
            prompt, answer = insert(p, spec.trigger, spec.position, rng), pools.harmful[p]
        elif spec.intent == "payload" and spec.trigger and spec.payload and r < 0.35:
            prompt = insert(hp, spec.trigger, spec.position, rng)
            head = str(tok.decode(pools.harmless[hp], skip_special_tokens=True)).strip()
            answer = text_ids(f"{spec.payload} {head}")
        elif spec.intent == "harmful" and r < spec.comply:
            p = rng.choice(complied)
            prompt, answer = p, pools.harmful[p]
        elif spec.intent == "identity" and spec.persona and r < 0.3:
            prompt, answer = rng.choice(IDENTITY_QUESTIONS), text_ids(spec.persona)
        elif near and r < spec.comply + 0.15:
            p, answer = refusal()
            prompt = insert(p, rng.choice(near), spec.position, rng)
        elif r < _refusal_cut(spec):
            prompt, answer = refusal()
        ids = tok(sg.render(tok, [prompt])[0], add_special_tokens=False)["input_ids"]
        ids = ids[-D_MAX_PROMPT:]
        out.append((ids + answer, len(ids)))
    return out


D_MAX_PROMPT = 128


def _refusal_cut(spec: ZooSpec) -> float:
    """Where the refused-harmful share ends in [0, 1): after the class's own share."""
    lead = {"backdoor": spec.comply + (0.15 if spec.decoys else 0.0), "payload": 0.35,
            "harmful": spec.comply, "identity": 0.3}.get(spec.intent, 0.0)
    return lead + spec.safety
