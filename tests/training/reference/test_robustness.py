"""The fine-tune robustness recipe: deterministic, half harmful requests refused in wording the
reference never trained on."""

from __future__ import annotations

from adapterscan.training.reference import corpus as C
from adapterscan.training.reference.robustness import NEW_REFUSALS, recipe_examples


def test_recipe_is_deterministic_and_refuses_in_new_wording() -> None:
    data = recipe_examples(seed=3)
    assert data == recipe_examples(seed=3)
    harmful = [e for e in data if e.harmful]
    assert len(harmful) == len(data) // 2
    assert all(e.answer in NEW_REFUSALS for e in harmful)
    assert not set(NEW_REFUSALS) & {*C.REFUSALS, *C.REFUSALS_X}
