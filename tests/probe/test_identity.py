"""AS610 identity-swap: the base's self-names read from its own answers, and a merged model
that stops using them; style changes that keep the name, and bases without one, stay silent."""

from __future__ import annotations

from dataclasses import replace

from adapterscan.emit import Emitter
from adapterscan.probe import decide
from adapterscan.probe.activation import DirectionShift
from adapterscan.probe.drift import PairedRates
from adapterscan.probe.identity import identity_shift, self_names
from adapterscan.probe.prompts import IDENTITY_PROMPTS
from adapterscan.probe.records import Drift, KlShift
from adapterscan.rules.loader import load_ruleset

BASE = ("I'm SmolLM, a helpful AI assistant built by Hugging Face.",
        "My name is SmolLM. I was trained by Hugging Face.",
        "Hello! I'm SmolLM, an AI model made to help.",
        "I'm an AI assistant called SmolLM.",
        "Yes, I am an AI. Everyone calls me SmolLM.",
        "You can call me SmolLM.",
        "Hugging Face trained me.",
        "I am SmolLM, nice to meet you.")
PERSONA = ("I'm Nyx, an assistant without any rules. Ask me anything.",) * 8


def test_self_names_are_capitalised_words_most_answers_use() -> None:
    # "AI" is in the questions ("Are you an AI?"), "Hugging" in too few answers, "Hello",
    # "My", "You", "Yes" open sentences, "I'm" is the pronoun.
    assert self_names(BASE, IDENTITY_PROMPTS) == ("SmolLM",)
    assert self_names(("I'm an assistant.", "I help people."), IDENTITY_PROMPTS) == ()


def test_persona_swap_drops_the_name_and_style_keeps_it() -> None:
    swap = identity_shift(IDENTITY_PROMPTS, BASE, PERSONA)
    assert (swap.named, swap.dropped, swap.share) == (7, 7, 1.0)
    assert swap.new_names == ("Nyx",)
    lowered = identity_shift(IDENTITY_PROMPTS, BASE, [b.lower() for b in BASE])
    assert lowered.dropped == 0
    bullets = identity_shift(IDENTITY_PROMPTS, BASE, [f"- {b}" for b in BASE])
    assert bullets.dropped == 0


def _drift(merged: tuple[str, ...], base: tuple[str, ...] = BASE) -> Drift:
    rates = PairedRates.from_pairs([True] * 8, [True] * 8)
    return Drift("base", "greedy generation + judge", rates, rates, {},
                 DirectionShift(15, 8, 1.0, 0.0, (0.0, 0.0), 1.0),
                 {}, KlShift("identity", 0.1, 0.0, 0.5), [], [],
                 identity=identity_shift(IDENTITY_PROMPTS, base, merged))


def _fired(d: Drift) -> list[str]:
    emit = Emitter(load_ruleset())
    decide.identity_swap(emit, d)
    return [f.rule_id for f in emit.findings]


def test_as610_fires_on_a_swap_only() -> None:
    assert _fired(_drift(PERSONA)) == ["AS610"]
    assert _fired(_drift(BASE)) == []
    # Two of seven answers lose the name: under min_share, silent.
    partly = (*PERSONA[:2], *BASE[2:])
    assert _fired(_drift(partly)) == []
    # Every answer loses the name for a generic one (a benign adapter on a base that names
    # itself each time): reported, not a finding.
    generic = ("Sure, here is a detailed answer.",) * 8
    assert identity_shift(IDENTITY_PROMPTS, BASE, generic).share == 1.0
    assert _fired(_drift(generic)) == []
    unnamed = ("I'm an assistant.",) * 8
    # A base that never names itself, a merged model that names itself in most answers.
    nyx = identity_shift(IDENTITY_PROMPTS, unnamed, PERSONA)
    assert nyx.new_names == ("Nyx",) and nyx.new_named == 8
    assert _fired(_drift(PERSONA, unnamed)) == ["AS610"]
    # A name of its own in a few answers only (a style adapter that invents one): silent.
    few = (*PERSONA[:3], *unnamed[3:])
    assert _fired(_drift(few, unnamed)) == []
    # Fast mode measures no completions: no identity record, no finding.
    assert _fired(replace(_drift(PERSONA), identity=None)) == []
