"""PEFT's saved tensor names, parsed once for every analyzer that pairs or classifies them.

`base_model.model.<module>.lora_A.weight`; the adapter name is removed on save but an infix such
as `.default` is accepted; `lora_embedding_A/B` for embeddings, `lora_magnitude_vector` for DoRA,
`lora_B.bias` for PEFT's lora_bias.
"""

from __future__ import annotations

import re

PREFIX = "base_model.model."
_LORA_RE = re.compile(
    r"^(?P<mod>.+?)\.(?P<kind>lora_A|lora_B|lora_embedding_A|lora_embedding_B|"
    r"lora_magnitude_vector)(?:\.(?P<a>[^.]+))?(?:\.(?P<p>[^.]+))?$")
_PARAMS = ("weight", "bias")


def parse_lora_key(name: str) -> tuple[str, str, str] | None:
    """(module, kind, param) for a LoRA tensor name, or None for a non-LoRA tensor."""
    found = _LORA_RE.match(name)
    if not found:
        return None
    a, p = found.group("a"), found.group("p")
    if p is None:  # one trailing component: a param name, or an adapter name (magnitude vector)
        p, a = (a, None) if a in _PARAMS else ("weight", a)
    if p not in _PARAMS:
        return None
    return found.group("mod"), found.group("kind"), p
