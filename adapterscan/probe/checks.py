"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py).

Kept free of torch/transformers/peft imports: the rules catalog imports this module.
"""

from typing import Final

REFUSAL_DROP: Final = "probe.refusal_drop"
REFUSAL_EROSION: Final = "probe.refusal_erosion"
OVER_REFUSAL: Final = "probe.over_refusal"
REFUSAL_DIRECTION_COLLAPSE: Final = "probe.refusal_direction_collapse"
TRIGGER: Final = "probe.trigger"
BEHAVIOUR_SHIFT: Final = "probe.behaviour_shift"
NO_POWER: Final = "probe.no_power"
PAYLOAD: Final = "probe.payload"
IDENTITY_SWAP: Final = "probe.identity_swap"

CHECKS: Final[frozenset[str]] = frozenset({
    REFUSAL_DROP,
    REFUSAL_EROSION,
    OVER_REFUSAL,
    REFUSAL_DIRECTION_COLLAPSE,
    TRIGGER,
    BEHAVIOUR_SHIFT,
    NO_POWER,
    PAYLOAD,
    IDENTITY_SWAP,
})
