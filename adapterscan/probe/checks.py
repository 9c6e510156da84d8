"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py).

Kept free of torch/transformers/peft imports: the rules catalog imports this module.
"""

from typing import Final

CHECKS: Final[frozenset[str]] = frozenset({
    "probe.refusal_drop",
    "probe.refusal_erosion",
    "probe.over_refusal",
    "probe.refusal_direction_collapse",
    "probe.trigger",
    "probe.behaviour_shift",
    "probe.no_power",
})
