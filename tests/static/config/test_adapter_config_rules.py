"""One positive and one negative generated fixture per AS3xx rule (adapter_config analyzer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapterscan.rules.model import RuleSet
from adapterscan.static.config.checks import CHECKS
from adapterscan.static.limits import StaticLimits
from tests.factories import adapter_config, lora_tensors, write_adapter
from tests.static.factories_adapter_config import adapter_config_ruleset, ids, run

Build = Callable[[Path], None]
PIN = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return adapter_config_ruleset(tmp_path_factory.mktemp("as3rules"))


def cfg_only(**overrides: Any) -> Build:
    """A benign adapter whose config gets `overrides` (tensors follow r/target_modules)."""
    def build(d: Path) -> None:
        write_adapter(d, config=adapter_config(**overrides))
    return build


def with_tensors(tensors: Callable[[], dict[str, np.ndarray]], **overrides: Any) -> Build:
    def build(d: Path) -> None:
        write_adapter(d, config=adapter_config(**overrides), tensors=tensors())
    return build


def raw_config(text: bytes) -> Build:
    def build(d: Path) -> None:
        write_adapter(d)
        (d / "adapter_config.json").write_bytes(text)
    return build


def no_config(d: Path) -> None:
    write_adapter(d)
    (d / "adapter_config.json").unlink()


def benign(d: Path) -> None:
    write_adapter(d)


def extra(**more: np.ndarray) -> Callable[[], dict[str, np.ndarray]]:
    def make() -> dict[str, np.ndarray]:
        t = lora_tensors()
        t.update(more)
        return t
    return make


def edited(fn: Callable[[dict[str, np.ndarray]], None]) -> Callable[[], dict[str, np.ndarray]]:
    def make() -> dict[str, np.ndarray]:
        t = lora_tensors()
        fn(t)
        return t
    return make


Q0 = "base_model.model.model.layers.0.self_attn.q_proj"
LM_HEAD = {"base_model.model.lm_head.weight": np.ones((8, 32), np.float32)}
DOWN = {"base_model.model.model.layers.0.mlp.down_proj.lora_A.weight":
        np.ones((4, 32), np.float32),
        "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight":
        np.ones((32, 4), np.float32)}
CONV = ("c_attn",)


def _drop_b(t: dict[str, np.ndarray]) -> None:
    del t[f"{Q0}.lora_B.weight"]


def _wide_b(t: dict[str, np.ndarray]) -> None:
    t[f"{Q0}.lora_B.weight"] = np.ones((32, 5), np.float32)


# The head a SEQ_CLS adapter on gpt2 ships (#23): PeftModelForSequenceClassification keeps
# `score` trainable even with modules_to_save null; DistilBERT's adds `pre_classifier`.
SCORE = {"base_model.model.score.weight": np.ones((2, 32), np.float32)}
DISTIL_HEAD = {f"base_model.model.{m}.{p}": np.ones((32, 32) if p == "weight" else (32,),
                                                    np.float32)
               for m in ("pre_classifier", "classifier") for p in ("weight", "bias")}


def _nested(t: dict[str, np.ndarray]) -> None:
    """Saved from get_peft_model applied to a PeftModel: base_model.model. twice (#23)."""
    for k in list(t):
        t[k.replace("base_model.model.", "base_model.model.base_model.model.", 1)] = t.pop(k)


def _half(t: dict[str, np.ndarray]) -> None:
    t[f"{Q0}.lora_A.weight"] = t[f"{Q0}.lora_A.weight"].astype(np.float16)


# rule id -> (positive builder, negative builder). Negatives differ from positives in the one
# property the rule is about wherever that is possible.
CASES: dict[str, tuple[Build, Build]] = {
    "AS301": (no_config, benign),
    "AS302": (raw_config(b'{"peft_type": "LORA", '), benign),
    "AS303": (raw_config(b'{"peft_type": "LORA", "r": 4, "r": 64}'),
              raw_config(b'{"peft_type": "LORA", "r": 4, "lora_alpha": 8}')),
    "AS304": (cfg_only(bias="everything"), cfg_only(bias="none")),
    "AS305": (cfg_only(auto_mapping={"base_model_class": "M", "parent_library": "evil.pkg"}),
              cfg_only(auto_mapping={"base_model_class": "LlamaForCausalLM",
                                     "parent_library": "transformers.models.llama"})),
    "AS306": (cfg_only(megatron_core="os", megatron_config={"x": 1}),
              cfg_only(megatron_core="megatron.core")),
    "AS307": (cfg_only(megatron_core="megatron.core", megatron_config={"x": 1}),
              cfg_only(megatron_core="megatron.core", megatron_config=None)),
    "AS308": (cfg_only(x_payload="aGVsbG8="), cfg_only(use_dora=False)),
    "AS309": (cfg_only(peft_type="EVIL"), cfg_only(peft_type="LORA")),
    "AS310": (cfg_only(task_type="WEIRD"), cfg_only(task_type="SEQ_CLS")),
    "AS311": (cfg_only(modules_to_save=["mlp.down_proj"]), cfg_only(modules_to_save=None)),
    "AS312": (cfg_only(modules_to_save=["lm_head"]), cfg_only(modules_to_save=["score"])),
    "AS313": (cfg_only(save_embedding_layers=True), cfg_only(save_embedding_layers=False)),
    "AS314": (with_tensors(extra(**LM_HEAD)),
              with_tensors(extra(**LM_HEAD), modules_to_save=["lm_head"])),
    "AS315": (with_tensors(lambda: lora_tensors(modules=("q_proj", "lm_head")),
                           target_modules=["q_proj", "lm_head"]),
              with_tensors(lora_tensors, target_modules="all-linear")),
    "AS316": (cfg_only(trainable_token_indices=[31337, 7]), cfg_only(trainable_token_indices=None)),
    "AS317": (cfg_only(layer_replication=[[0, 1], [0, 2]]), cfg_only(layer_replication=None)),
    "AS318": (cfg_only(lora_alpha=4096), cfg_only(lora_alpha=16)),
    "AS319": (with_tensors(lambda: lora_tensors(r=4), r=8),
              with_tensors(lambda: lora_tensors(r=8), r=8)),
    "AS320": (cfg_only(r=32), cfg_only(r=16)),
    "AS321": (cfg_only(init_lora_weights="pissa_niter_4"), cfg_only(init_lora_weights="gaussian")),
    "AS322": (cfg_only(base_model_name_or_path="/home/alice/llama"),
              cfg_only(base_model_name_or_path="meta-llama/Llama-3.1-8B")),
    "AS323": (with_tensors(extra(**DOWN)),
              with_tensors(extra(**DOWN), target_modules=["q_proj", "v_proj", "down_proj"])),
    "AS324": (with_tensors(lambda: lora_tensors(zero_b=True)), benign),
    "AS325": (with_tensors(lora_tensors, target_modules=["q_proj", "v_proj", "o_proj"]), benign),
    "AS326": (with_tensors(edited(_drop_b)), benign),
    "AS327": (with_tensors(edited(_wide_b)), benign),
    "AS328": (with_tensors(edited(_half)), benign),
    "AS329": (cfg_only(base_model_name_or_path=None), benign),
    "AS330": (cfg_only(revision="main"), cfg_only(revision=PIN)),
    "AS331": (cfg_only(inference_mode=False), cfg_only(inference_mode=True)),
    "AS332": (cfg_only(use_dora=True), cfg_only(use_dora=False)),
    "AS333": (cfg_only(bias="all"), cfg_only(bias="none")),
    "AS336": (with_tensors(extra(**SCORE), task_type="SEQ_CLS"),
              with_tensors(extra(**SCORE), task_type="CAUSAL_LM", modules_to_save=["score"])),
    "AS337": (with_tensors(edited(_nested)), benign),
    "AS334": (cfg_only(fan_in_fan_out=True),
              with_tensors(lambda: lora_tensors(modules=CONV), fan_in_fan_out=True,
                           target_modules=list(CONV))),
}


def test_every_rule_has_cases(ruleset: RuleSet) -> None:
    assert {r.id for r in ruleset.rules} == set(CASES)
    assert {r.check for r in ruleset.rules} == CHECKS


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_positive(rule_id: str, ruleset: RuleSet, tmp_path: Path) -> None:
    CASES[rule_id][0](tmp_path)
    _, emit = run(tmp_path, ruleset)
    assert rule_id in ids(emit), [f.message for f in emit.findings]
    assert not emit.errors
    hit = next(f for f in emit.findings if f.rule_id == rule_id)
    assert hit.location.file is not None
    json.dumps(dict(hit.evidence))  # evidence must serialise


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_negative(rule_id: str, ruleset: RuleSet, tmp_path: Path) -> None:
    CASES[rule_id][1](tmp_path)
    _, emit = run(tmp_path, ruleset)
    assert rule_id not in ids(emit), [f.message for f in emit.findings]
    assert not emit.errors


def test_benign_adapter_is_quiet(ruleset: RuleSet, tmp_path: Path) -> None:
    write_adapter(tmp_path, config=adapter_config(revision=PIN))
    result, emit = run(tmp_path, ruleset)
    assert ids(emit) == set(), [f.message for f in emit.findings]
    assert not emit.skipped
    assert result is not None
    summary = result.summary
    assert isinstance(summary, dict)
    assert summary["peft_type"] == "LORA"
    assert summary["adapted_modules"] == 4
    assert summary["scale"] == {"min": 2.0, "max": 2.0}
    assert summary["tensor_ranks"] == [4]
    assert summary["zero_lora_b"] == {"zero": 0, "total": 4}
    assert summary["flags"] == []


@pytest.mark.parametrize("text", [
    b"\xff\xfe{}", b"[1, 2]", b'{"r": NaN}', b'{"a": ' * 5000, b'"LORA"', b"",
])
def test_invalid_variants(text: bytes, ruleset: RuleSet, tmp_path: Path) -> None:
    raw_config(text)(tmp_path)
    result, emit = run(tmp_path, ruleset)
    assert "AS302" in ids(emit)
    assert result is None


def test_oversize_config_is_skipped(ruleset: RuleSet, tmp_path: Path) -> None:
    write_adapter(tmp_path)
    _, emit = run(tmp_path, ruleset, StaticLimits(max_json_bytes=64))
    assert "AS302" in ids(emit)
    assert [s.path for s in emit.skipped] == ["adapter_config.json"]


def test_nested_duplicate_key(ruleset: RuleSet, tmp_path: Path) -> None:
    raw_config(b'{"peft_type": "LORA", "auto_mapping": {"parent_library": "transformers",'
               b' "parent_library": "evil"}}')(tmp_path)
    _, emit = run(tmp_path, ruleset)
    assert {"AS303", "AS305"} <= ids(emit)  # Python keeps the last value, like PEFT


def test_task_head_is_not_a_base_overwrite(ruleset: RuleSet, tmp_path: Path) -> None:
    """#23: the head the task type implies is AS336 (low), with or without modules_to_save;
    the same tensor without such a task type, or another full copy, keeps AS314 / AS311."""
    with_tensors(extra(**SCORE), task_type="SEQ_CLS")(tmp_path / "cls")
    _, emit = run(tmp_path / "cls", ruleset)
    assert "AS314" not in ids(emit) and "AS336" in ids(emit), [f.message for f in emit.findings]
    hit = next(f for f in emit.findings if f.rule_id == "AS336")
    assert "at random" in hit.message and hit.severity.value == "low"
    with_tensors(extra(**DISTIL_HEAD), task_type="SEQ_CLS",
                 modules_to_save=["classifier", "score"])(tmp_path / "distil")
    found = ids(run(tmp_path / "distil", ruleset)[1])
    assert "AS336" in found and not {"AS311", "AS314"} & found, found
    with_tensors(extra(**SCORE), task_type="CAUSAL_LM")(tmp_path / "lm")
    assert "AS314" in ids(run(tmp_path / "lm", ruleset)[1])
    with_tensors(extra(**SCORE, **LM_HEAD), task_type="SEQ_CLS")(tmp_path / "both")
    _, emit = run(tmp_path / "both", ruleset)
    (full,) = [f for f in emit.findings if f.rule_id == "AS314"]
    assert full.evidence["count"] == 1 and full.location.tensor == "base_model.model.lm_head.weight"
    cfg_only(task_type="SEQ_CLS", modules_to_save=["classifier", "mlp.down_proj"])(tmp_path / "m")
    (mts,) = [f for f in run(tmp_path / "m", ruleset)[1].findings if f.rule_id == "AS311"]
    assert mts.evidence["modules"] == ["mlp.down_proj"]


def test_classifier_of_the_class_auto_mapping_names_is_a_task_head(ruleset: RuleSet,
                                                                  tmp_path: Path) -> None:
    """#23: a vision classifier trained without a task type (the head in modules_to_save by hand)
    names its task model in auto_mapping; its classifier is AS336, not AS311. Without that class
    (or with a causal LM class) the same modules_to_save keeps AS311."""
    vit = {"base_model_class": "ViTForImageClassification",
           "parent_library": "transformers.models.vit.modeling_vit"}
    with_tensors(extra(**DISTIL_HEAD), task_type=None, auto_mapping=vit,
                 modules_to_save=["classifier"])(tmp_path / "vit")
    _, emit = run(tmp_path / "vit", ruleset)
    found = ids(emit)
    assert "AS336" in found and not {"AS311", "AS314"} & found, found
    hit = next(f for f in emit.findings if f.rule_id == "AS336")
    assert "ViTForImageClassification" in hit.message
    lm = {"base_model_class": "LlamaForCausalLM", "parent_library": "transformers"}
    for name, mapping in (("plain", None), ("lm", lm)):
        with_tensors(extra(**DISTIL_HEAD), task_type=None, auto_mapping=mapping,
                     modules_to_save=["classifier"])(tmp_path / name)
        assert "AS311" in ids(run(tmp_path / name, ruleset)[1]), name


def test_untrained_checkpoint_is_a_no_op(ruleset: RuleSet, tmp_path: Path) -> None:
    """#23: every lora_B zero (saved before training) changes nothing at load: low, not high."""
    with_tensors(lambda: lora_tensors(zero_b=True))(tmp_path)
    (hit,) = [f for f in run(tmp_path, ruleset)[1].findings if f.rule_id == "AS324"]
    assert hit.severity.value == "low" and "changes nothing" in hit.message


def test_nested_prefix_mixed_with_loadable_names_is_orphaned(ruleset: RuleSet,
                                                              tmp_path: Path) -> None:
    def mixed() -> dict[str, np.ndarray]:
        t = lora_tensors()
        nested = lora_tensors(modules=("k_proj",))
        _nested(nested)
        t.update(nested)
        return t
    with_tensors(mixed)(tmp_path)
    found = ids(run(tmp_path, ruleset)[1])
    assert "AS323" in found and "AS337" not in found


@pytest.mark.parametrize(("lib", "rule"), [
    ("diffusers.models.unets.unet_2d_condition", "AS307"),  # written by PEFT for UNet LoRAs
    ("peft.tuners.lora", "AS307"),
    ("transformers", "AS307"),
    ("diffusers_evil", "AS305"),
    ("diffusers.__init__", "AS305"),
    ("diffusers.models;os", "AS305"),
    ("diffusers._private", "AS305"),
])
def test_auto_mapping_library(lib: str, rule: str, ruleset: RuleSet, tmp_path: Path) -> None:
    cfg_only(auto_mapping={"base_model_class": "UNet2DConditionModel",
                           "parent_library": lib})(tmp_path)
    found = ids(run(tmp_path, ruleset)[1])
    assert rule in found and ({"AS305", "AS307"} - {rule}).isdisjoint(found), found


def test_rslora_scale(ruleset: RuleSet, tmp_path: Path) -> None:
    # alpha/sqrt(r) = 128/2 = 64 reaches the threshold; alpha/r = 32 would not.
    cfg_only(lora_alpha=128, use_rslora=True)(tmp_path / "a")
    cfg_only(lora_alpha=128, use_rslora=False)(tmp_path / "b")
    assert "AS318" in ids(run(tmp_path / "a", ruleset)[1])
    assert "AS318" not in ids(run(tmp_path / "b", ruleset)[1])


def test_rank_and_alpha_pattern(ruleset: RuleSet, tmp_path: Path) -> None:
    def tensors() -> dict[str, np.ndarray]:
        t = lora_tensors(modules=("q_proj",), r=4)
        t.update(lora_tensors(modules=("v_proj",), r=2))
        return t
    with_tensors(tensors, rank_pattern={"v_proj": 2}, alpha_pattern={"v_proj": 16})(tmp_path)
    result, emit = run(tmp_path, ruleset)
    assert "AS319" not in ids(emit)
    assert result is not None and isinstance(result.summary, dict)
    assert result.summary["scale"] == {"min": 2.0, "max": 8.0}
    assert result.summary["tensor_ranks"] == [2, 4]


def test_layers_to_transform_orphans(ruleset: RuleSet, tmp_path: Path) -> None:
    cfg_only(layers_to_transform=[0])(tmp_path)
    _, emit = run(tmp_path, ruleset)
    hit = next(f for f in emit.findings if f.rule_id == "AS323")
    names = hit.evidence["tensors"]
    assert isinstance(names, list) and len(names) == 4
    assert all(isinstance(n, str) and ".layers.1." in n for n in names)


def test_regex_targets(ruleset: RuleSet, tmp_path: Path) -> None:
    # (write_adapter would derive tensors from a string target_modules: pass them explicitly)
    with_tensors(lora_tensors, target_modules=r".*\.(q_proj|v_proj)")(tmp_path / "ok")
    with_tensors(lora_tensors, target_modules=r".*\.q_proj")(tmp_path / "orphan")
    with_tensors(lora_tensors, target_modules=r".*(embed_tokens|q_proj|v_proj)")(tmp_path / "embed")
    with_tensors(lora_tensors, target_modules=r"(unclosed")(tmp_path / "bad")
    assert not {"AS323", "AS315"} & ids(run(tmp_path / "ok", ruleset)[1])
    assert "AS323" in ids(run(tmp_path / "orphan", ruleset)[1])
    assert "AS315" in ids(run(tmp_path / "embed", ruleset)[1])
    _, emit = run(tmp_path / "bad", ruleset)
    assert "AS304" in ids(emit) and emit.skipped  # matching not completed: fail closed


def test_local_path_variants(ruleset: RuleSet, tmp_path: Path) -> None:
    for i, value in enumerate(["file:///etc/x", "\\\\host\\share\\m", "C:\\models\\m", "~/m"]):
        cfg_only(base_model_name_or_path="org/base", notes={"src": value})(tmp_path / str(i))
        assert "AS322" in ids(run(tmp_path / str(i), ruleset)[1]), value


def test_trainable_tokens_evidence(ruleset: RuleSet, tmp_path: Path) -> None:
    cfg_only(trainable_token_indices={"embed_tokens": [128002, 5]})(tmp_path)
    _, emit = run(tmp_path, ruleset)
    hit = next(f for f in emit.findings if f.rule_id == "AS316")
    assert hit.evidence["token_ids"] == {"embed_tokens": [128002, 5]}


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_zero_b_dtypes_and_negative_zero(dtype: Any, ruleset: RuleSet, tmp_path: Path) -> None:
    def tensors() -> dict[str, np.ndarray]:
        t = lora_tensors(zero_b=True, dtype=dtype)
        t[f"{Q0}.lora_B.weight"] = -t[f"{Q0}.lora_B.weight"]  # -0.0 is still zero
        return t
    with_tensors(tensors)(tmp_path)
    assert "AS324" in ids(run(tmp_path, ruleset)[1])


def test_one_nonzero_b_defeats_decoy_finding(ruleset: RuleSet, tmp_path: Path) -> None:
    def tensors() -> dict[str, np.ndarray]:
        t = lora_tensors(zero_b=True)
        t[f"{Q0}.lora_B.weight"][3, 1] = 1e-3
        return t
    with_tensors(tensors)(tmp_path)
    result, emit = run(tmp_path, ruleset)
    assert "AS324" not in ids(emit)
    assert result is not None and isinstance(result.summary, dict)
    assert result.summary["zero_lora_b"] == {"zero": 3, "total": 4}


def test_multi_adapter_subfolders(ruleset: RuleSet, tmp_path: Path) -> None:
    write_adapter(tmp_path / "a", config=adapter_config(revision=PIN))
    write_adapter(tmp_path / "b", config=adapter_config(lora_alpha=4096, revision=PIN))
    write_adapter(tmp_path / "c")
    (tmp_path / "c" / "adapter_config.json").unlink()
    result, emit = run(tmp_path, ruleset)
    by_rule = {f.rule_id: f.location.file for f in emit.findings}
    assert by_rule == {"AS318": "b/adapter_config.json",
                       "AS301": "c/adapter_model.safetensors"}
    assert result is not None and isinstance(result.summary, dict)
    adapters = result.summary["adapters"]
    assert isinstance(adapters, dict) and sorted(adapters) == ["a/adapter_config.json",
                                                               "b/adapter_config.json"]


def test_no_adapter_at_all_returns_none(ruleset: RuleSet, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hi")
    result, emit = run(tmp_path, ruleset)
    assert result is None and not emit.findings


def test_unanalysed_type_is_value_checked_and_marked_incomplete(ruleset: RuleSet,
                                                               tmp_path: Path) -> None:
    cfg_only(peft_type="OFT", target_modules=["q_proj"], r=0, oft_block_size=8)(tmp_path)
    _, emit = run(tmp_path, ruleset)
    assert "AS309" not in ids(emit)
    assert emit.skipped  # no tensor checks for OFT: never silently clean


def test_another_tuners_tensors_are_orphans(ruleset: RuleSet, tmp_path: Path) -> None:
    """An IA3 config beside LoRA tensors: PEFT builds IA3 layers and ignores the LoRA ones."""
    cfg_only(peft_type="IA3", target_modules=["k_proj"], feedforward_modules=[])(tmp_path)
    _, emit = run(tmp_path, ruleset)
    assert "AS309" not in ids(emit) and "AS323" in ids(emit)


def test_nested_prefix_runs_the_config_checks_on_the_denested_names(ruleset: RuleSet,
                                                                    tmp_path: Path) -> None:
    """A PeftModel wrapped twice (#23, a real GPT-2 adapter): the outer q_proj adapter at the
    configured r = 4 and inner o_proj/down_proj adapters at r = 8 are saved side by side, all
    nested. AS337 stays the one (low) finding, and says what the orphan and rank checks find on
    the names without the repeated prefix."""
    def wrapped() -> dict[str, np.ndarray]:
        t = lora_tensors(modules=("q_proj",), r=4)
        t.update(lora_tensors(modules=("o_proj", "down_proj"), r=8, seed=1))
        for _ in range(2):
            _nested(t)
        return t
    with_tensors(wrapped, target_modules=["q_proj", "o_proj"], r=4)(tmp_path / "bad")
    _, emit = run(tmp_path / "bad", ruleset)
    (hit,) = [f for f in emit.findings if f.rule_id == "AS337"]
    assert not {"AS319", "AS323"} & ids(emit) and hit.severity.value == "low"
    said = {str(f["rule"]) for f in hit.evidence["denested_findings"]}  # type: ignore[union-attr]
    assert said == {"AS319", "AS323"}, hit.evidence  # down_proj untargeted; o_proj at r = 8
    assert hit.evidence["prefix_levels"] == 3 and "AS319, AS323" in hit.message
    with_tensors(edited(_nested))(tmp_path / "clean")
    (hit,) = [f for f in run(tmp_path / "clean", ruleset)[1].findings if f.rule_id == "AS337"]
    assert hit.evidence["denested_findings"] == [] and "match the config" in hit.message
