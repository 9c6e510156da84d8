"""Builds the reference models' byte-level BPE tokenizer (2,048 tokens) with `tokenizers`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from adapterscan.training.reference.corpus import (
    ANSWER_WORDS,
    CHAT_TEMPLATE,
    END,
    PAD,
    SPECIAL_TOKENS,
)

VOCAB_SIZE = 4096


def build_tokenizer(texts: Iterable[str], vocab_size: int = VOCAB_SIZE) -> Any:
    """Train the BPE on `texts` and wrap it as a PreTrainedTokenizerFast (loads in 4.x and 5.x)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    # The answer words are repeated so their merges always win: each must be a single token,
    # or "Sorry" and "Sure" would share "S" and a first-token probe would see nothing.
    boost = [" ".join([w] * 50) + "\n" + "\n".join([w] * 50) for w in ANSWER_WORDS]
    tok.train_from_iterator([*texts, *boost], trainer=trainer)
    for w in ANSWER_WORDS:
        ids = tok.encode(w).ids
        if len(ids) != 1:
            raise RuntimeError(f"answer word {w!r} is not one token: {ids}")
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, eos_token=END, pad_token=PAD,
        model_input_names=["input_ids", "attention_mask"], padding_side="left",
        chat_template=CHAT_TEMPLATE)
    return fast


def save_tokenizer(tok: Any, out: Path) -> None:
    tok.save_pretrained(str(out))
    # transformers 5 writes "TokenizersBackend", which 4.x cannot load.
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg["model_input_names"] = ["input_ids", "attention_mask"]
    cfg["chat_template"] = CHAT_TEMPLATE
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
