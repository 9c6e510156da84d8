"""PEFT trainable tokens: rewritten embedding rows are named and tried first as triggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapterscan.static.weights.analysis import WeightOptions
from adapterscan.static.weights.tokens import SOURCE, delta_target, order_candidates
from adapterscan.static.weights.trigger_tokens import TokenCandidate
from tests.static.factories_weights import lora, scan, write, write_base

HIDDEN = 32
DELTA = "base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta"


def _base(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(9)
    embed = rng.normal(size=(64, HIDDEN))
    w = {i: rng.normal(size=(HIDDEN, HIDDEN)) for i in range(2)}
    return write_base(tmp_path / "base", 2, w, embed), embed


def _adapter(tmp_path: Path, embed: np.ndarray, ids: Any, rows: np.ndarray) -> Path:
    t = lora(layers=2, hidden=HIDDEN)
    t[DELTA] = rows.astype(np.float32)
    cfg = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"],
           "trainable_token_indices": ids}
    return write(tmp_path / "ad", t, cfg)


@pytest.mark.parametrize(("name", "target"), [
    (DELTA, "model.embed_tokens"),
    (DELTA + ".default", "model.embed_tokens"),
    ("base_model.model.model.embed_tokens.weight", None),
])
def test_delta_names(name: str, target: str | None) -> None:
    assert delta_target(name) == target


def test_rewritten_tokens_lead_the_trigger_candidates(tmp_path: Path) -> None:
    base, embed = _base(tmp_path)
    rows = embed[[7, 40, 12]].copy()
    rows[0] += 3.0  # token 7 moved far, token 40 a little, token 12 not at all
    rows[1] += 0.1
    emit, res = scan(_adapter(tmp_path, embed, [7, 40, 12], rows),
                     WeightOptions(base_dir=base, use_default_baseline=False))
    rec = res["trainable_tokens"][0]
    assert rec["token_ids"] == [7, 40, 12] and rec["base"] == "model.embed_tokens.weight"
    assert rec["relative_change"][2] == pytest.approx(0.0, abs=1e-6)
    lead = res["trigger_candidates"][:3]
    assert [(c["token_id"], c["token"], c["source"]) for c in lead[:2]] == [
        (7, "tok7", SOURCE), (40, "tok40", SOURCE)]
    assert lead[2]["source"] != SOURCE  # the unchanged row is not a candidate
    assert not emit.skipped


def test_without_a_base_the_rows_are_recorded_only(tmp_path: Path) -> None:
    _, embed = _base(tmp_path)
    _, res = scan(_adapter(tmp_path, embed, {"embed_tokens": [1, 2]}, embed[[1, 2]] + 1))
    assert res["trainable_tokens"] == [{"tensor": DELTA, "module": "model.embed_tokens",
                                        "token_ids": [1, 2], "rows": 2}]


@pytest.mark.parametrize(("ids", "reason"), [
    ([1, 2, 3], "3 ids"), (None, "missing or not a list"), ([1, 1], "2 ids"),
    (["a", 2], "missing or not a list")])
def test_ids_that_do_not_name_the_rows_are_skips(tmp_path: Path, ids: Any, reason: str) -> None:
    _, embed = _base(tmp_path)
    emit, res = scan(_adapter(tmp_path, embed, ids, embed[[1, 2]]))
    assert res["trainable_tokens"] == []
    assert any(reason in s.reason for s in emit.skipped), [s.reason for s in emit.skipped]


def test_ids_outside_the_base_vocabulary_are_skips(tmp_path: Path) -> None:
    base, embed = _base(tmp_path)
    emit, _ = scan(_adapter(tmp_path, embed, [1, 9999], embed[[1, 2]]),
                   WeightOptions(base_dir=base, use_default_baseline=False))
    assert any("do not fit model.embed_tokens.weight" in s.reason for s in emit.skipped)


def test_candidate_order() -> None:
    cands = [TokenCandidate(1, "a", 9.0, 2.0, "first-layer-response"),
             TokenCandidate(2, "b", 1.0, 8.0, "first-layer-response"),
             TokenCandidate(3, "c", 0.1, 0.0, SOURCE), TokenCandidate(4, "d", 0.5, 0.0, SOURCE)]
    assert [c.token_id for c in order_candidates(cands)] == [4, 3, 2, 1]


def test_the_static_stage_hands_the_probe_its_trigger_candidates_typed(tmp_path: Path) -> None:
    from adapterscan.emit import Emitter
    from adapterscan.fetch.local import LocalFetcher
    from adapterscan.rules.loader import load_ruleset
    from adapterscan.static.interface import run_static
    from adapterscan.static.options import StaticOptions

    base, embed = _base(tmp_path)
    rows = embed[[7, 40, 12]].copy()
    rows[0] += 3.0
    emit = Emitter(load_ruleset())
    src = LocalFetcher(_adapter(tmp_path, embed, [7, 40, 12], rows)).fetch(emit)
    static = run_static(src, emit, StaticOptions(weights=WeightOptions(
        base_dir=base, use_default_baseline=False)), {})
    assert static.trigger_candidates[0] == TokenCandidate(
        7, "tok7", static.trigger_candidates[0].score, static.trigger_candidates[0].z, SOURCE)
    weights = static.results["weights"]
    assert isinstance(weights, dict)
    assert weights["trigger_candidates"] == [c.to_json() for c in static.trigger_candidates]
