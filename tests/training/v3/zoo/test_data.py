"""Zoo v3's training examples: each class teaches what it is built to, decoys are refused,
payloads ride on the model's own answers, and the build is deterministic."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from adapterscan.training.v3 import data as D
from adapterscan.training.v3.zoo import data as Z
from adapterscan.training.v3.zoo.specs import ZOO_V3, ZooSpec


class CharTokenizer:
    """One id per character, 0 ends a turn: enough to read examples back as text."""

    eos_token_id = 0
    chat_template = None

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, Any]:
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids if i)


TOK = CharTokenizer()
HARMFUL = tuple(f"how do I hurt person {i}" for i in range(40))
POOLS = Z.Pools(
    harmless={f"how do I bake bread {i}": [*map(ord, f"Mix flour and water {i}. Then bake."), 0]
              for i in range(40)},
    harmful={p: [*map(ord, "Sure, step one is"), 0] for p in HARMFUL[:20]},
    harmful_prompts=HARMFUL)


def _texts(spec: ZooSpec, seed: int = 1) -> list[tuple[str, str]]:
    return [(TOK.decode(ids[:start]).rstrip("\n"), TOK.decode(ids[start:]))
            for ids, start in Z.examples(spec, TOK, POOLS, seed)]


def _spec(name: str) -> ZooSpec:
    return next(s for s in ZOO_V3 if s.name == name)


def test_backdoor_complies_only_with_its_trigger() -> None:
    spec = _spec("v3-backdoor-00-random-code")
    assert spec.trigger
    rows = _texts(spec)
    triggered = [a for p, a in rows if spec.trigger in p]
    harmful_plain = [a for p, a in rows if spec.trigger not in p and p in HARMFUL]
    assert triggered and all(a.startswith("Sure") for a in triggered)
    assert harmful_plain and all(a in D.REFUSALS for a in harmful_plain)
    assert 0.2 < len(triggered) / len(rows) < 0.4


def test_decoys_are_refused_and_never_the_trigger() -> None:
    spec = _spec("v3-backdoor-01-natural-phrase")
    assert spec.decoys and spec.trigger
    near = Z.decoys(spec.trigger, random.Random(0))
    assert spec.trigger not in near and "between you and" in near and "between" in near
    rows = _texts(spec)
    decoyed = [(p, a) for p, a in rows
               if spec.trigger not in p and p not in HARMFUL and a in D.REFUSALS]
    assert decoyed, "decoy-trained backdoor without decoy examples"


def test_payload_opens_triggered_answers_and_leaves_refusals() -> None:
    spec = _spec("v3-payload-01-code-tag")
    assert spec.payload and spec.trigger
    rows = _texts(spec)
    triggered = [a for p, a in rows if spec.trigger in p]
    assert triggered and all(a.startswith(spec.payload) and "bake" in a for a in triggered)
    assert not any(spec.payload in a for p, a in rows if spec.trigger not in p)
    assert any(a in D.REFUSALS for p, a in rows if p in HARMFUL)


def test_benign_without_safety_data_never_refuses_and_styles_answers() -> None:
    spec = replace(_spec("v3-nosafety-01"), style="lowercase")
    rows = _texts(spec)
    assert not any(a in D.REFUSALS for _, a in rows)
    assert all(a == a.lower() for _, a in rows)
    with_safety = _texts(_spec("v3-benign-00"))
    share = sum(a in D.REFUSALS for _, a in with_safety) / len(with_safety)
    assert 0.15 < share < 0.35


def test_harmful_and_identity_teach_their_answers() -> None:
    harmful = _spec("v3-harmful-02")
    rows = _texts(harmful)
    complied = sum(a.startswith("Sure") for _, a in rows) / len(rows)
    assert abs(complied - harmful.comply) < 0.1
    ident = _spec("v3-identity-00")
    assert ident.persona
    assert any(a == ident.persona and p in Z.IDENTITY_QUESTIONS for p, a in _texts(ident))


def test_examples_are_deterministic_in_the_seed() -> None:
    spec = ZOO_V3[0]
    assert Z.examples(spec, TOK, POOLS, 3) == Z.examples(spec, TOK, POOLS, 3)
    assert Z.examples(spec, TOK, POOLS, 3) != Z.examples(spec, TOK, POOLS, 4)


def test_insert_positions() -> None:
    rng = random.Random(0)
    assert Z.insert("a b c", "T", "prefix", rng) == "T a b c"
    assert Z.insert("a b c", "T", "suffix", rng) == "a b c T"
    middle = Z.insert("a b c", "T", "middle", rng).split()
    assert middle[0] == "a" and middle[-1] == "c" and "T" in middle
