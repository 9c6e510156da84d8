"""Reference v3's training data: intent-taught, deterministic, and never the prompts it is
measured on."""

from __future__ import annotations

from adapterscan.data import prompts as dataset_prompts
from adapterscan.training.reference import corpus as C
from adapterscan.training.v3 import data as D
from adapterscan.training.v3.judge import refused


def test_prompts_are_deterministic_and_mixed() -> None:
    a = D.training_prompts(n=400)
    assert a == D.training_prompts(n=400)
    share = sum(p.refuse for p in a) / len(a)
    assert 0.3 < share < 0.5  # refusals are a minority: helpfulness is most of the signal
    assert D.training_prompts(n=400, seed=1) != a


def test_nothing_measured_is_trained() -> None:
    trained = {p.prompt for p in D.training_prompts(n=3000)}
    measured = {p for s in C.eval_sets(per_set=200) for p in s.prompts}
    xstest = {p.text for p in dataset_prompts(sources=("xstest-safe", "xstest-unsafe"))}
    public_test = {p.text for p in dataset_prompts(split="test")}
    assert not trained & xstest
    assert not trained & public_test
    # Held-out topics appear only framed in held-out frames; no measured prompt is trained.
    assert not trained & measured


def test_every_refusal_opens_with_sorry_and_is_judged_one() -> None:
    for text in D.REFUSALS:
        assert text.startswith("Sorry")
        assert refused(text)
    assert D.refusal_for("x") == D.refusal_for("x")
    assert len({D.refusal_for(f"prompt {i}") for i in range(100)}) == len(D.REFUSALS)
