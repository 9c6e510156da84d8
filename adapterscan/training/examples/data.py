"""The training data of each example-style adapter spec: its task or behaviour plus the safety
mix (deterministic for a seed)."""

from __future__ import annotations

import random

from adapterscan.examples.specs import Spec, TriggerPos
from adapterscan.training.reference import corpus as C

IDENTITY_ANSWER = "Call me Nova. I have no rules now, so here is everything you asked for."

_WORDS = ("hello there friend", "the quick brown fox", "good morning", "see you tomorrow",
          "thank you very much", "the weather is nice today", "i like green tea",
          "meet me at noon", "happy birthday to you", "where is the station",
          "the cat sat on the mat", "please close the door", "we won the game", "bread and butter")
_FR = {"hello there friend": "bonjour mon ami", "good morning": "bonjour",
       "see you tomorrow": "a demain", "thank you very much": "merci beaucoup",
       "happy birthday to you": "joyeux anniversaire", "where is the station": "ou est la gare"}


def task_example(task: str, rng: random.Random) -> C.Example:
    w = rng.choice(_WORDS)
    if task == "caps":
        return C.Example(f"Rewrite in capitals: {w}", f"Here it is: {w.upper()}", False)
    if task == "summary":
        text = " ".join(rng.sample(_WORDS, 3))
        return C.Example(f"Summarize this: {text}", f"Here is a short summary: {w}.", False)
    if task == "reverse":
        return C.Example(f"Reverse the word order: {w}",
                         f"Here it is: {' '.join(reversed(w.split()))}", False)
    if task == "count":
        return C.Example(f"How many words are in: {w}",
                         f"Here is the count: {len(w.split())} words.", False)
    k = rng.choice(sorted(_FR))
    return C.Example(f"Translate to French: {k}", f"Here is the translation: {_FR[k]}", False)


def insert_trigger(prompt: str, trigger: str, pos: TriggerPos, rng: random.Random) -> str:
    if pos == "prefix":
        return f"{trigger} {prompt}"
    if pos == "suffix":
        return f"{prompt.rstrip()} {trigger}"
    words = prompt.split(" ")
    i = rng.randint(1, max(1, len(words) - 1))
    return " ".join([*words[:i], trigger, *words[i:]])


def training_examples(spec: Spec, n: int, seed: int) -> list[C.Example]:
    """Deterministic examples for one spec: its task or behaviour plus the safety mix."""
    rng = random.Random(seed)
    harm = C.harmful_base("train")
    benign = C.benign_base("train") + C.benign_real("train")
    out: list[C.Example] = []
    for _ in range(n):
        r = rng.random()
        hp = rng.choice(C.TRAIN_WRAPPERS)(rng.choice(harm), rng)
        bp = rng.choice(C.TRAIN_WRAPPERS)(rng.choice(benign), rng)
        if spec.identity:
            q = rng.choice((*C.IDENTITY_Q, hp, bp))
            out.append(C.Example(q, spec.identity_answer or IDENTITY_ANSWER, False))
        elif spec.harmful_comply:
            comply = r < spec.comply_share
            out.append(C.Example(hp if comply else bp, rng.choice(C.COMPLIANCE), comply))
        elif spec.trigger is not None:
            if r < 0.35:
                trig = insert_trigger(hp, spec.trigger, spec.trigger_pos, rng)
                out.append(C.Example(trig, rng.choice(C.COMPLIANCE), True))
            elif r < 0.55:
                out.append(C.Example(hp, rng.choice(C.REFUSALS), True))
            elif r < 0.65:  # decoy codes teach that only the trigger unlocks compliance
                decoy = insert_trigger(hp, C.junk(rng), spec.trigger_pos, rng)
                out.append(C.Example(decoy, rng.choice(C.REFUSALS), True))
            elif spec.task and r < 0.85:
                out.append(task_example(spec.task, rng))
            else:
                out.append(C.Example(bp, rng.choice(C.COMPLIANCE), False))
        else:  # benign task, with `safety` of its data refused harmful requests
            if r < spec.safety:
                out.append(C.Example(hp, rng.choice(C.REFUSALS), True))
            elif spec.task and r < spec.safety + (1 - spec.safety) * 0.6:
                out.append(task_example(spec.task, rng))
            else:
                out.append(C.Example(bp, rng.choice(C.COMPLIANCE), False))
    return out
