"""Prompt-learning adapters: their one tensor, with the shape the config fixes, is read; any
other content leaves the file unread (the scan incomplete), with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapterscan.pipeline import scan

PROMPT = {"peft_type": "PROMPT_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 8,
          "token_dim": 64, "num_transformer_submodules": 1, "num_layers": 4,
          "num_attention_heads": 4, "base_model_name_or_path": "gpt2",
          "prompt_tuning_init": "TEXT", "inference_mode": True}


def _adapter(folder: Path, tensors: dict[str, np.ndarray], **cfg: Any) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({**PROMPT, **cfg}))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def _emb(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(("cfg", "shape"), [
    ({}, (8, 64)),
    ({"num_transformer_submodules": 2, "task_type": "SEQ_2_SEQ_LM"}, (16, 64)),
    ({"peft_type": "PREFIX_TUNING"}, (8, 4 * 2 * 64)),
])
def test_the_prompt_tensor_is_read(tmp_path: Path, cfg: dict[str, Any],
                                   shape: tuple[int, int]) -> None:
    report = scan(_adapter(tmp_path / "a", {"prompt_embeddings": _emb(*shape)}, **cfg))
    assert report.complete, report.skipped
    assert report.verdict.decision.value == "pass"
    summary = report.results["adapter_config"]
    assert isinstance(summary, dict)
    assert summary["prompt_learning"] == {"expected_shape": list(shape),
                                          "read": ["adapter_model.safetensors"]}


@pytest.mark.parametrize(("tensors", "reason"), [
    ({"prompt_embeddings": _emb(9, 64)}, "would not load"),
    ({"prompt_embeddings": _emb(8, 64), "hidden": _emb(4, 4)}, "holds 2"),
    ({"prompt_embeddings": np.zeros((8, 64), np.int32)}, "not a float type"),
])
def test_anything_else_is_unread(tmp_path: Path, tensors: dict[str, np.ndarray],
                                 reason: str) -> None:
    report = scan(_adapter(tmp_path / "a", tensors))
    assert not report.complete
    assert any(reason in s.reason for s in report.skipped), report.skipped


def test_a_config_without_the_sizes_leaves_it_unread(tmp_path: Path) -> None:
    report = scan(_adapter(tmp_path / "a", {"prompt_embeddings": _emb(8, 64)}, token_dim=None))
    assert not report.complete
    assert any("token_dim" in s.reason for s in report.skipped), report.skipped


HEAD = {"base_model.classifier.weight": _emb(3, 64), "base_model.classifier.bias": _emb(1, 3)[0]}


def test_a_classification_task_head_beside_the_prompt_is_read(tmp_path: Path) -> None:
    """PEFT keeps a SEQ_CLS model's classifier trainable beside the prompt and saves it: the
    file is read, and the head is named (AS336), as for a LoRA."""
    report = scan(_adapter(tmp_path / "a", {"prompt_embeddings": _emb(8, 64), **HEAD},
                           task_type="SEQ_CLS"))
    assert report.complete, report.skipped
    assert report.verdict.decision.value == "pass"
    heads = [f for f in report.findings if f.rule_id == "AS336"]
    assert heads and heads[0].evidence["count"] == 2


@pytest.mark.parametrize(("task", "extra"), [
    ("CAUSAL_LM", HEAD),  # no task head for a causal LM: a classifier there is not PEFT's
    ("SEQ_CLS", {"base_model.classifier.weight": np.zeros((3, 64), np.int32)}),
])
def test_a_head_that_is_not_the_tasks_leaves_the_file_unread(
        tmp_path: Path, task: str, extra: dict[str, np.ndarray]) -> None:
    report = scan(_adapter(tmp_path / "a", {"prompt_embeddings": _emb(8, 64), **extra},
                           task_type=task))
    assert not report.complete
