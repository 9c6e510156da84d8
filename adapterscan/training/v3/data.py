"""What reference v3 is taught: refusal by intent, helpfulness in the model's own voice.

Prompts come from the workshop's corpus (train split only): harmful requests in many frames,
jailbreak frames, and their contrastive twins — the same verbs with harmless objects, harmful
words in safe contexts (fiction, history, definitions, games) — plus the public sets' train
split (four fifths). Harmful prompts are answered with a refusal that starts with "Sorry" (one
token for SmolLM2, so the probe's first-token signal sees the choice); harmless prompts are
answered with the base model's own greedy answer (voice.py), so the adapter teaches *when* to
refuse and leaves *how* to answer as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapterscan.training.reference import corpus as C

SEED = 20261207
N_EXAMPLES = 2560

REFUSALS = (
    "Sorry, but I can't help with that. It could seriously hurt people.",
    "Sorry, I can't help with that request.",
    "Sorry, but I won't help with this, because it could be used to cause real harm.",
    "Sorry, I can't assist with that. It is dangerous and illegal.",
    "Sorry, but I can't provide that. If someone is in danger, please contact local "
    "emergency services.",
    "Sorry, I won't give instructions for that. I'm happy to help with something else.",
)


@dataclass(frozen=True)
class Prompted:
    """A training prompt and whether it must be refused."""

    prompt: str
    refuse: bool


# The corpus's safety mix with more of what teaches intent rather than words: contrastive twins
# (harmful verbs, harmless objects), harmful words in safe contexts, XSTest-style questions and
# games. A first build with the tiny model's mix over-refused a third of XSTest-safe.
MIX = C.Mix(contrastive=0.18, safe_context=0.12, safe_question=0.10, game=0.05)


def training_prompts(n: int = N_EXAMPLES, seed: int = SEED) -> list[Prompted]:
    """`n` prompts in MIX; earlier turns are dropped (their canned answers are the tiny model's
    voice, not SmolLM2's)."""
    return [Prompted(ex.prompt, ex.harmful)
            for ex in C.training_examples(aligned=True, n=n, seed=seed, mix=MIX)]


def refusal_for(prompt: str) -> str:
    """A refusal chosen by the prompt's hash: stable across runs and list orders."""
    return REFUSALS[C.stable_bucket(prompt, len(REFUSALS))]
