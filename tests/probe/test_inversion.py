"""Trigger inversion and memory extraction find triggers that no candidate list holds; target
inversion finds the payload a backdoor emits (AS609)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from adapterscan.probe import signals as sg
from adapterscan.probe import target_inversion
from adapterscan.probe.projection_growth import vocabulary_pool
from adapterscan.probe.target_inversion import _Scorer, invert_targets
from adapterscan.probe.weight_directions import ProjectionMeter
from tests.probe import factories_probe as fp
from tests.probe.test_probe import _probe

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return fp.build_set(tmp_path_factory.mktemp("inv"), {
        "trigger": ("trigger", 50), "leaky": ("leaky", 150), "payload": ("payload", 120),
        "noop": ("noop", 40)})


def test_inversion_names_an_unlisted_trigger(models: dict[str, Path]) -> None:
    """No added token, no model card, not on the generic list: only inversion can find it."""
    emit, result = _probe(models["trigger"], models["base"])
    triggers = result["triggers"]
    assert isinstance(triggers, dict)
    listed = {c["trigger"] for c in triggers["candidate_list"]}  # type: ignore[index,union-attr]
    assert fp.TRIGGER not in listed
    named = [f.evidence["trigger"] for f in emit.findings if f.rule_id == "AS605"]
    assert any(fp.TRIGGER in str(t) for t in named), (named, triggers.get("inversion"))
    hit = next(f for f in emit.findings if f.rule_id == "AS605" and fp.TRIGGER
               in str(f.evidence["trigger"]))
    assert hit.evidence["origin"] == "inverted"
    for part in ("set_a", "set_b"):  # confirmed on two disjoint prompt sets
        block = hit.evidence[part]
        assert isinstance(block, dict) and isinstance(block["merged"], dict)
        assert float(block["merged"]["drift"]) <= -0.5  # type: ignore[arg-type]


def test_inversion_finds_nothing_on_a_noop_adapter(models: dict[str, Path]) -> None:
    emit, result = _probe(models["noop"], models["base"])
    assert "AS605" not in {f.rule_id for f in emit.findings}
    triggers = result["triggers"]
    assert isinstance(triggers, dict) and isinstance(triggers.get("inversion"), list)
    for found in triggers["inversion"]:  # type: ignore[union-attr]
        assert isinstance(found, dict)
        assert float(found["merged_drop"]) - max(float(found["base_drop"]), 0.0) < 0.5  # type: ignore[arg-type]


def test_memory_extraction_recovers_a_leaked_trigger(models: dict[str, Path]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adapterscan.probe.extraction import extract

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(str(models["base"]))
    base = AutoModelForCausalLM.from_pretrained(str(models["base"]))
    leaky = PeftModel.from_pretrained(base, str(models["leaky"]))
    found = [t for t, _ in extract(leaky, tok, torch.device("cpu"), leaky.disable_adapter,
                                   samples=16)]
    assert any(fp.LEAKY_TRIGGER in t for t in found), found
    clean = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(models["base"])),
                                      str(models["noop"]))
    assert not extract(clean, tok, torch.device("cpu"), clean.disable_adapter, samples=16)


def test_an_exhausted_budget_still_searches_every_position(models: dict[str, Path]) -> None:
    """With no time budget at all, each position still gets its first whole-vocabulary step:
    a slow machine shortens strings, it never drops the mid-sentence or suffix search."""
    import dataclasses

    from tests.probe.test_probe import OPTS

    _, result = _probe(models["trigger"], models["base"],
                       dataclasses.replace(OPTS, inversion_budget_s=0.0))
    triggers = result["triggers"]
    assert isinstance(triggers, dict)
    found = triggers["inversion"]
    assert isinstance(found, list)
    assert {f["position"] for f in found} == {"prefix", "suffix", "middle"}  # type: ignore[index]
    assert all(f["tokens"] == 1 for f in found)  # type: ignore[index]


def _load(adapter: Path, base: Path) -> tuple[Any, Any]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(str(base))
    tok.padding_side = "left"
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base)),
                                      str(adapter))
    model.eval()
    return model, tok


def _targets(adapter: Path, base: Path) -> list[str]:
    model, tok = _load(adapter, base)
    hints = vocabulary_pool(model, tok, ProjectionMeter(model), 16)
    found = invert_targets(model, tok, torch.device("cpu"), fp.benign()[:4] + fp.harmful()[:4],
                           model.disable_adapter, hints=hints)
    return [t.text for t in found if t.kind is not None and t.log_ratio >= 2.0]


def test_target_inversion_recovers_a_payload_without_its_trigger(
        models: dict[str, Path]) -> None:
    found = _targets(models["payload"], models["base"])
    assert any(fp.PAYLOAD.split()[1] in t for t in found), found
    assert _targets(models["noop"], models["base"]) == []


def test_payload_openers_find_a_payload_the_shortlist_misses(models: dict[str, Path]) -> None:
    """Without the weight directions' hints the payload's first token (`curl`) is in no
    shortlist: the payload openers (PAYLOAD_OPENERS) are looked ahead from anyway, and the
    no-op adapter still yields no payload."""
    for name, want in (("payload", True), ("noop", False)):
        model, tok = _load(models[name], models["base"])
        found = invert_targets(model, tok, torch.device("cpu"),
                               fp.benign()[:4] + fp.harmful()[:4], model.disable_adapter)
        hits = [t.text for t in found if t.kind is not None and t.log_ratio >= 2.0]
        assert any(fp.PAYLOAD.split()[1] in t for t in hits) is want, (name, found)


def test_as609_fires_in_the_probe_and_not_on_a_noop(models: dict[str, Path]) -> None:
    emit, result = _probe(models["payload"], models["base"])
    hits = [f for f in emit.findings if f.rule_id == "AS609"]
    assert any(fp.PAYLOAD.split()[1] in str(h.evidence["text"]) for h in hits), result
    assert all(h.evidence["payload"] == "url" for h in hits)
    assert "AS601" not in {f.rule_id for f in emit.findings}  # refusals untouched
    emit, _ = _probe(models["noop"], models["base"])
    assert "AS609" not in {f.rule_id for f in emit.findings}


@torch.inference_mode()
def _recomputed(model: Any, tok: Any, prompts: list[str], answers: list[list[int]]
                ) -> torch.Tensor:
    """The next-token distribution after each answer, prompts recomputed in full per answer."""
    rows = [list(tok(t, add_special_tokens=False)["input_ids"])
            for t in sg.render(tok, prompts)]
    out = []
    for a in answers:
        probs = [torch.softmax(model(input_ids=torch.tensor([r + a])).logits[0, -1], dim=-1)
                 for r in rows]
        out.append(torch.stack(probs).mean(dim=0))
    return torch.stack(out)


@pytest.mark.parametrize("cached", [True, False])
def test_target_scorer_with_cached_prompts_matches_full_recomputation(
        models: dict[str, Path], cached: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prompts' keys and values are computed once per model and reused for every answer
    (or, for a cache of another kind, recomputed with each answer); with prompts of different
    lengths (left padding) and small batches, the distributions equal those of each prompt and
    answer run in full, on the merged model and on the base."""
    if not cached:
        monkeypatch.setattr(target_inversion, "key_values", lambda cache: None)
    model, tok = _load(models["payload"], models["base"])
    prompts = [fp.benign()[0], fp.harmful()[1], fp.harmful()[0] + " now please", "make a kite"]
    scorer = _Scorer(model, tok, torch.device("cpu"), prompts, 5, model.disable_adapter)
    words = tok(fp.PAYLOAD, add_special_tokens=False)["input_ids"]
    answers: list[list[int]]
    for answers in ([[]], [[w] for w in words], [words[:2], words[1:3], words[2:4]]):
        got = scorer.mean_probs(answers)
        assert torch.allclose(got, _recomputed(model, tok, prompts, answers), atol=1e-5)
        with model.disable_adapter():
            want = _recomputed(model, tok, prompts, answers)
        assert torch.allclose(scorer.mean_probs(answers, base=True), want, atol=1e-5)
    with pytest.raises(ValueError, match="one length"):
        scorer.mean_probs([words[:1], words[:2]])
