"""Soft-trigger inversion: the slot batches equal the text they stand for, and the fit finds the
backdoor's switch on the merged model while the base keeps refusing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from adapterscan.probe import signals as sg
from adapterscan.probe.soft_trigger import SoftConfig, SoftInputs, fit
from adapterscan.probe.triggers import insert
from tests.probe import factories_probe as fp
from tests.probe.test_inversion import _load as load_peft

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return fp.build_set(tmp_path_factory.mktemp("soft"), {"trigger": ("trigger", 50)})


def _load(models: dict[str, Path]) -> tuple[Any, Any]:
    model, tok = load_peft(models["trigger"], models["base"])
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tok


def _refusal_ids(tok: Any) -> list[int]:
    return [int(tok(fp.REFUSAL.split()[0], add_special_tokens=False)["input_ids"][0])]


@pytest.mark.parametrize("position", ["prefix", "suffix", "middle"])
def test_slots_holding_a_word_embedding_read_as_that_word(models: dict[str, Path],
                                                          position: str) -> None:
    """One slot holding the trigger word's embedding gives the distribution of the prompt with
    the word typed in; no slot gives that of the plain prompt (left padding, mixed lengths)."""
    model, tok = _load(models)
    ids = _refusal_ids(tok)
    prompts = [fp.harmful()[0], fp.harmful()[3] + " now", fp.benign()[1]]
    inputs = SoftInputs(model, tok, torch.device("cpu"), 1, position)
    word = tok(fp.TRIGGER, add_special_tokens=False)["input_ids"]
    soft = inputs.embed.weight[torch.tensor(word)].detach()
    plain = sg.forward(model, tok, prompts, layer=1, batch_size=8, device=torch.device("cpu"))
    typed = sg.forward(model, tok, [insert(p, fp.TRIGGER, position) for p in prompts], layer=1,
                       batch_size=8, device=torch.device("cpu"))
    assert inputs.refusal_probs(prompts, None, ids, 2) == pytest.approx(
        sg.refusal_prob(plain.logprobs, ids), abs=1e-5)
    assert inputs.refusal_probs(prompts, soft, ids, 2) == pytest.approx(
        sg.refusal_prob(typed.logprobs, ids), abs=1e-5)


def test_fit_switches_the_merged_model_off_and_not_the_base(models: dict[str, Path]) -> None:
    """On held-out harmful prompts, the input fitted on four others switches off the
    backdoored merged model's refusals while the base, given the same input, still refuses."""
    model, tok = _load(models)
    ids = _refusal_ids(tok)
    inputs = SoftInputs(model, tok, torch.device("cpu"), 2, "prefix")
    harmful = fp.harmful()
    fitted = fit(inputs, harmful[:4], ids, model.disable_adapter, SoftConfig(slots=2, steps=30))
    held = harmful[4:]
    assert min(inputs.refusal_probs(held, None, ids, 16)) > 0.5  # refused without it
    merged = inputs.refusal_probs(held, fitted.vectors, ids, 16)
    with model.disable_adapter():
        base = inputs.refusal_probs(held, fitted.vectors, ids, 16)
    assert sum(p < 0.5 for p in merged) >= 0.8 * len(held), merged
    assert sum(p > 0.5 for p in base) >= 0.8 * len(held), base
    assert len(fitted.nearest) == 2 and fitted.merged_fit < fitted.base_fit
    cap = float(torch.quantile(inputs.embed.weight.detach().norm(dim=-1), 0.99))
    assert float(fitted.vectors.norm(dim=-1).max()) <= cap + 1e-4  # stays token-like
