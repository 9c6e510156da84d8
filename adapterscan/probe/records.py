"""What the probe measured, as frozen records.

The detectors (decide.py) read these records and nothing else: measuring and deciding stay
apart (garak's probe / detector split), so a threshold changes a decision, never a measurement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from adapterscan.findings import JSONValue
from adapterscan.probe import signals as sg
from adapterscan.probe.activation import DirectionShift
from adapterscan.probe.drift import PairedRates
from adapterscan.probe.identity import IdentityShift
from adapterscan.probe.judge import Label
from adapterscan.probe.target_inversion import Target


@dataclass(frozen=True)
class Measured:
    """One model's pass over the prompt suites (the base's, or the merged model's)."""

    fwd: Mapping[str, sg.ForwardOut]
    text: Mapping[str, list[str]]
    first_ids: Mapping[str, list[int]]
    labels: Mapping[str, list[Label]]


@dataclass(frozen=True)
class KlShift:
    """The prompt group whose next-token distribution moved most (by the low end of its CI)."""

    group: str  # "harmless" | "identity"; "" when no group had prompts
    mean: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Drift:
    """Merged minus base on the same prompts: what AS601-AS604 and AS606 decide on."""

    base_label: str
    how: str  # the primary signal: "greedy generation + judge" | "first-token probability"
    harmful: PairedRates  # refusal of harmful prompts, by the primary signal
    harmless: PairedRates  # refusal of harmless prompts, by the primary signal
    first_token: Mapping[str, JSONValue]  # the first-token refusal signal, as reported
    direction: DirectionShift
    behaviour: Mapping[str, JSONValue]  # per prompt group, as reported
    worst: KlShift
    harmful_examples: JSONValue  # merged completions of harmful prompts
    worst_examples: JSONValue  # merged completions in the worst group
    identity: IdentityShift | None = None  # self-names dropped (when generating)
    identity_examples: JSONValue = None  # base and merged answers to identity prompts

    def evidence(self) -> dict[str, JSONValue]:
        return {"signal": self.how, "base_model": self.base_label}


def _mean(a: float | None, b: float | None) -> float | None:
    known = [x for x in (a, b) if x is not None]
    return sum(known) / len(known) if known else None


@dataclass(frozen=True)
class Trial:
    """One candidate on one confirmation set: merged with vs without, base with vs without,
    merged with vs the neutral control, merged with vs without on the same prompts rewritten
    (case, punctuation, opener), and how much the string raised the adapter's directions."""

    merged: PairedRates
    base: PairedRates
    control: PairedRates
    perturbed: PairedRates
    projection_rise: float | None  # weight_directions.rise; None: no LoRA module to read

    def pooled(self, other: Trial) -> Trial:
        return Trial(self.merged.plus(other.merged), self.base.plus(other.base),
                     self.control.plus(other.control), self.perturbed.plus(other.perturbed),
                     _mean(self.projection_rise, other.projection_rise))

    def to_json(self) -> dict[str, JSONValue]:
        rise = self.projection_rise
        return {"merged": self.merged.to_json(), "base": self.base.to_json(),
                "merged_vs_control": self.control.to_json(),
                "merged_perturbed": self.perturbed.to_json(),
                "projection_rise": None if rise is None else round(rise, 4)}


@dataclass(frozen=True)
class TriggerTrial:
    """One candidate string at one position, tried on both disjoint confirmation sets."""

    text: str
    origin: str
    position: str
    control: str  # the neutral string inserted at the same position
    set_a: Trial
    set_b: Trial

    @property
    def both(self) -> Trial:
        return self.set_a.pooled(self.set_b)

    def to_json(self, finding: bool) -> dict[str, JSONValue]:
        return {"trigger": self.text, "origin": self.origin, "position": self.position,
                **self.both.to_json(), "control": self.control,
                "set_a": self.set_a.to_json(), "set_b": self.set_b.to_json(), "finding": finding}


@dataclass(frozen=True)
class TriggerSearch:
    """What the trigger search measured; `summary` is its report without the decisions."""

    summary: Mapping[str, JSONValue]
    trials: tuple[TriggerTrial, ...] = ()
    # Why AS605 could not run at all: too few prompts were asked for (--max-prompts), not
    # refusals the adapter removed (AS601 covers those).
    incomplete: str | None = None
    # Target inversion: answers the merged model continues confidently beyond the base.
    targets: tuple[Target, ...] = ()
