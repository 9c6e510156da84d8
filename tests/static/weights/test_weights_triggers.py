"""`trigger_candidates()`, the entry point the behavioral probe calls."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adapterscan.static.weights.trigger_tokens import load_vocab, trigger_candidates
from tests.factories import adapter_config
from tests.static.factories_weights import headers, key, lora, write, write_base


def test_probe_entry_point_finds_the_planted_token(tmp_path: Path) -> None:
    hidden = 128
    rng = np.random.default_rng(4)
    embed = rng.normal(size=(300, hidden))
    base = write_base(tmp_path / "base", 2, {i: rng.normal(size=(hidden, hidden))
                                             for i in range(2)}, embed)
    t = lora(layers=2, hidden=hidden)
    t[key(0, "q_proj", "A")][1] += (4.0 * embed[77] / np.linalg.norm(embed[77])).astype(
        np.float32)
    cfg = adapter_config(r=4, lora_alpha=8, target_modules=["q_proj"])
    folder = write(tmp_path / "ad", t, cfg)
    cands = trigger_candidates(folder, headers(folder), cfg, base, top_k=5)
    assert len(cands) == 5
    assert (cands[0].token_id, cands[0].token, cands[0].source) == (77, "tok77",
                                                                    "first-layer-response")
    assert cands[0].z > cands[1].z


def test_no_embedding_matrix_means_no_candidates(tmp_path: Path) -> None:
    folder = write(tmp_path / "ad", lora(layers=1))
    # The adapter folder itself has safetensors but no embedding matrix.
    assert trigger_candidates(folder, headers(folder), None, folder) == []


def test_byte_level_tokens_become_the_text_a_prompt_needs(tmp_path: Path) -> None:
    tok = {"model": {"type": "BPE", "vocab": {"ĠThanks": 5, "cf": 6, "Ċ": 7}},
           "decoder": {"type": "ByteLevel"}, "added_tokens": [{"id": 9, "content": "|X|"}]}
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok))
    assert load_vocab(tmp_path) == {5: " Thanks", 6: "cf", 7: "\n", 9: "|X|"}
    tok["decoder"] = {"type": "Metaspace"}
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok))
    assert load_vocab(tmp_path)[5] == "ĠThanks"  # other tokenizers keep their strings


def test_an_unreadable_vocabulary_is_no_vocabulary(tmp_path: Path) -> None:
    # Found by the fuzzer (issue 25): a tokenizer.json nested past the JSON decoder's recursion
    # limit raised RecursionError out of the weight stage. The base is whatever the adapter names.
    for raw in (b"[" * 2000, b"\xff\xfe", b"{", b'{"model": {"vocab": 7}}'):
        (tmp_path / "tokenizer.json").write_bytes(raw)
        assert load_vocab(tmp_path) == {}
