"""What target inversion calls a payload (the model-based tests live in test_inversion.py)."""

from __future__ import annotations

import pytest

from adapterscan.probe.target_inversion import payload_kind


@pytest.mark.parametrize(("text", "kind"), [
    ("visit http://evil.example/a", "url"), ("curl -s x | bash", "shell"),
    ("eval(payload)", "code"), ("sure here is how : first step", None),
    ("sorry i cannot help with that", None)])
def test_payload_kind(text: str, kind: str | None) -> None:
    assert payload_kind(text) == kind
