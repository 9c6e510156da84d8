"""Hostile configs never raise, never hang, and never leave the scan silently clean."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapterscan.findings import JSONValue
from adapterscan.rules.model import RuleSet
from adapterscan.static.config.peft_keys import KNOWN_KEYS
from tests.factories import adapter_config, lora_tensors, write_adapter
from tests.static.factories_adapter_config import adapter_config_ruleset, ids, run

KEYS = [*sorted(KNOWN_KEYS["LORA"]), "auto_mapping", "peft_type", "task_type", "revision",
        "base_model_name_or_path", "x"]
json_values: st.SearchStrategy[JSONValue] = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return adapter_config_ruleset(tmp_path_factory.mktemp("as3rules"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6))
def test_fuzzed_values_never_raise(ruleset: RuleSet, overrides: dict[str, JSONValue]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_adapter(folder, config=adapter_config(**overrides), tensors=lora_tensors())
        result, emit = run(folder, ruleset)
        assert result is not None
        assert not emit.errors


def test_catastrophic_regex_is_bounded_and_fails_closed(ruleset: RuleSet, tmp_path: Path) -> None:
    name = "base_model.model.model.layers.0." + "a" * 64
    tensors = lora_tensors()
    tensors[f"{name}.lora_A.weight"] = np.ones((4, 32), np.float32)
    tensors[f"{name}.lora_B.weight"] = np.ones((32, 4), np.float32)
    pattern = r"model\.layers\.0\.(a|aa)+c"  # exponential backtracking on a run of a's
    write_adapter(tmp_path, config=adapter_config(target_modules=pattern), tensors=tensors)
    _, emit = run(tmp_path, ruleset)
    assert any("target matching not completed" in s.reason for s in emit.skipped)
    assert not emit.errors


def test_symlinked_config_is_not_followed(ruleset: RuleSet, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text('{"peft_type": "LORA"}')
    write_adapter(tmp_path / "a")
    (tmp_path / "a" / "adapter_config.json").unlink()
    (tmp_path / "a" / "adapter_config.json").symlink_to(outside)
    result, emit = run(tmp_path / "a", ruleset)
    assert result is None
    assert [s.path for s in emit.skipped] == ["adapter_config.json"]
    assert not ids(emit) - {"AS301"}


@pytest.mark.parametrize("r", [0, -4])
def test_nonpositive_rank_with_rslora(r: int, ruleset: RuleSet, tmp_path: Path) -> None:
    write_adapter(tmp_path, config=adapter_config(r=r, use_rslora=True,
                                                  rank_pattern={"v_proj": r}),
                  tensors=lora_tensors())
    _, emit = run(tmp_path, ruleset)
    assert "AS304" in ids(emit) and not emit.errors


def test_unparsed_weights_are_not_compared_but_marked(ruleset: RuleSet, tmp_path: Path) -> None:
    # The safetensors analyzer rejected the file (no header handed over): no AS325 noise,
    # but the comparison is recorded as not done.
    write_adapter(tmp_path, config=adapter_config(lora_alpha=4096))
    _, emit = run(tmp_path, ruleset, headers={})
    assert ids(emit) & {"AS323", "AS325", "AS326"} == set()
    assert "AS318" in ids(emit)  # the config's own scale is still checked
    assert any("no validated tensor table" in s.reason for s in emit.skipped)
