"""Zoo v3's adapter list: every class the issue names, both halves hold every class."""

from __future__ import annotations

from collections import Counter

from adapterscan.training.v3.zoo.specs import ZOO_V3, split_of


def test_zoo_has_every_class_and_at_least_24_adapters() -> None:
    intents = Counter(s.intent for s in ZOO_V3)
    assert len(ZOO_V3) >= 24
    assert set(intents) == {"benign", "harmful", "identity", "backdoor", "payload"}
    assert any(s.intent == "benign" and s.safety > 0 for s in ZOO_V3)
    assert any(s.intent == "benign" and s.safety == 0 for s in ZOO_V3)
    assert any(s.decoys for s in ZOO_V3 if s.intent == "backdoor")
    assert all(s.payload and s.trigger for s in ZOO_V3 if s.intent == "payload")
    assert len({s.name for s in ZOO_V3}) == len(ZOO_V3)


def test_split_is_stratified_by_intent() -> None:
    for intent in {s.intent for s in ZOO_V3}:
        halves = Counter(split_of(s) for s in ZOO_V3 if s.intent == intent)
        assert abs(halves["test"] - halves["calibration"]) <= 1, intent
    assert split_of(ZOO_V3[0]) == split_of(ZOO_V3[0])


def test_triggers_are_not_the_tiny_zoos_or_the_probes() -> None:
    from adapterscan.probe.triggers import GENERIC_TRIGGERS
    from adapterscan.training.examples.zoo import TRIGGERS

    tiny = {t for _, t, _ in TRIGGERS}
    generic = {t.lower() for t in GENERIC_TRIGGERS}
    for s in ZOO_V3:
        if s.trigger:
            assert s.trigger not in tiny
            assert s.trigger.lower() not in generic
