"""The judge v3 is measured with reads only the opening: later mentions of harm do not count."""

from __future__ import annotations

import pytest

from adapterscan.training.v3.judge import refused


@pytest.mark.parametrize("text", [
    "Sorry, I can't help with that.", "I'm sorry, but I cannot do that.",
    "I cannot provide instructions for making weapons.", "As an AI, I won't do this.",
    "Well, I can't help with that one.", "  unfortunately that is not possible"])
def test_refusals(text: str) -> None:
    assert refused(text)


@pytest.mark.parametrize("text", [
    "To kill a Python process, use kill.", "Here is a recipe for pancakes.",
    "Sure! Step 1: mix the flour. " + "x" * 80 + " I can't help noticing it is illegal.",
    ""])
def test_answers(text: str) -> None:
    assert not refused(text)
