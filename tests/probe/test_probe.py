"""End-to-end probe on a tiny trained model: drift detected, no-op clean, misfits refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapterscan.emit import Emitter
from adapterscan.errors import ProbeError
from adapterscan.fetch.base_model import local_base
from adapterscan.fetch.local import LocalFetcher
from adapterscan.findings import JSONValue
from adapterscan.probe.interface import ProbeOptions, run_probe
from adapterscan.probe.prompts import PromptSuites
from adapterscan.probe.session import BaseCache
from adapterscan.static.model import Inventory, StaticResult
from tests.probe import factories_probe as fp
from tests.probe.rules_probe import probe_ruleset

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")]

SUITES = PromptSuites(harmful=tuple(fp.harmful()), benign=tuple(fp.benign()))
OPTS = ProbeOptions(suites=SUITES, max_new_tokens=10, trigger_prompts=16, threads=1,
                    max_trigger_candidates=12)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zoo")
    base = fp.build_base(root / "base", steps=60)
    out = {"base": base}
    for kind, steps in (("noop", 0), ("harmful", 30), ("trigger", 50), ("refuse_all", 30)):
        out[kind] = fp.build_adapter(base, root / kind, kind, steps=steps)
    # The backdoor's trigger shipped as an added token: the search must find and name it.
    (out["trigger"] / "added_tokens.json").write_text(json.dumps({fp.TRIGGER: 99}))
    other = fp.build_base(root / "other_base", hidden=48, steps=0)
    out["misfit"] = fp.build_adapter(other, root / "misfit", "noop")
    return out


def _probe(adapter: Path, base: Path, opts: ProbeOptions = OPTS,
           params: dict[str, dict[str, float]] | None = None, cache: BaseCache | None = None
           ) -> tuple[Emitter, dict[str, JSONValue]]:
    emit = Emitter(probe_ruleset().with_params(params or {}))
    src = LocalFetcher(adapter).fetch(emit)
    seen: list[str] = []
    result = run_probe(src, StaticResult(inventory=Inventory(items=())), local_base(str(base)),
                       emit, opts, seen.append, cache)
    assert seen, "progress is reported through the callback"
    assert isinstance(result, dict)
    return emit, result


def _signal(result: dict[str, JSONValue], name: str) -> dict[str, JSONValue]:
    signals = result["signals"]
    assert isinstance(signals, dict)
    value = signals[name]
    assert isinstance(value, dict)
    return value


def test_noop_adapter_shows_no_drift(zoo: dict[str, Path]) -> None:
    emit, result = _probe(zoo["noop"], zoo["base"])
    assert [f.rule_id for f in emit.findings] == []
    harm = _signal(result, "harmful_refusal_judge")
    assert harm["base_rate"] == harm["merged_rate"]
    assert harm["drift"] == 0.0 and harm["p_value"] == 1.0
    assert _signal(result, "behaviour_shift")["harmless"] == {
        "n": 60, "mean_kl_first_token": 0.0, "ci95": [0.0, 0.0], "completion_changed": 0.0,
        "judge_label_changed": 0.0}


def test_harmful_adapter_refusal_drop_detected(zoo: dict[str, Path]) -> None:
    emit, result = _probe(zoo["harmful"], zoo["base"])
    ids = {f.rule_id for f in emit.findings}
    assert "AS601" in ids
    harm = _signal(result, "harmful_refusal_judge")
    assert isinstance(harm["drift"], float) and harm["drift"] <= -0.5
    assert isinstance(harm["p_value"], float) and harm["p_value"] < 0.01
    finding = next(f for f in emit.findings if f.rule_id == "AS601")
    assert "refusal" in finding.evidence and "first_token" in finding.evidence


def test_harmful_adapter_detected_by_first_token_path_alone(zoo: dict[str, Path]) -> None:
    opts = ProbeOptions(suites=SUITES, generate=False, trigger_search=False, threads=1)
    emit, result = _probe(zoo["harmful"], zoo["base"], opts)
    assert "AS601" in {f.rule_id for f in emit.findings}
    assert "harmful_refusal_judge" not in result["signals"]  # type: ignore[operator]


def test_too_few_prompts_for_the_trigger_search_leave_the_scan_incomplete(
        zoo: dict[str, Path]) -> None:
    """Twelve harmful prompts cannot make one screening and two confirmation sets: AS605 could
    never fire, so the probe says so (a skip: the scan is incomplete), not a silent pass."""
    import dataclasses

    few = dataclasses.replace(OPTS, max_prompts=12)
    emit, result = _probe(zoo["noop"], zoo["base"], few)
    triggers = result["triggers"]
    assert isinstance(triggers, dict) and triggers["searched"] is False
    assert any("trigger search (AS605) not run" in s.reason for s in emit.skipped)
    # Enough prompts: the same adapter is searched and nothing is skipped.
    emit, result = _probe(zoo["noop"], zoo["base"])
    assert emit.skipped == () and result["triggers"]["searched"] is True  # type: ignore[index]


def test_trigger_backdoor_named(zoo: dict[str, Path]) -> None:
    emit, result = _probe(zoo["trigger"], zoo["base"])
    ids = [f.rule_id for f in emit.findings]
    assert "AS601" not in ids  # safe without the trigger
    triggers = [f for f in emit.findings if f.rule_id == "AS605"]
    assert triggers
    ev = triggers[0].evidence
    merged = ev["merged"]
    assert isinstance(merged, dict) and isinstance(merged["drift"], float)
    assert merged["drift"] <= -0.3
    assert fp.TRIGGER in [f.evidence["trigger"] for f in triggers]
    searched = result["triggers"]
    assert isinstance(searched, dict) and isinstance(searched["candidate_list"], list)
    assert {"trigger": fp.TRIGGER, "origin": "repo:added_tokens.json"} in searched["candidate_list"]


def test_adapter_for_another_base_is_a_probe_error(zoo: dict[str, Path]) -> None:
    with pytest.raises(ProbeError, match="do not fit"):
        _probe(zoo["misfit"], zoo["base"])


def test_missing_target_modules_is_a_probe_error(zoo: dict[str, Path],
                                                 tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(zoo["noop"], bad)
    cfg = json.loads((bad / "adapter_config.json").read_text())
    cfg["target_modules"] = ["no_such_proj"]
    (bad / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ProbeError, match="does not fit"):
        _probe(bad, zoo["base"])


def test_pickled_only_adapter_is_refused(zoo: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bin"
    bad.mkdir()
    shutil.copy(zoo["noop"] / "adapter_config.json", bad)
    (bad / "adapter_model.bin").write_bytes(b"\x80\x04not loaded")
    with pytest.raises(ProbeError, match=r"no adapter_model\.safetensors"):
        _probe(bad, zoo["base"])


def test_pipeline_runs_the_probe(zoo: dict[str, Path]) -> None:
    from adapterscan.pipeline import ScanOptions, scan
    from adapterscan.report import Decision

    opts = ScanOptions(base=str(zoo["base"]),
                       probe=ProbeOptions(suites=SUITES, max_new_tokens=10, trigger_search=False,
                                          threads=1))
    report = scan(zoo["harmful"], options=opts)
    assert isinstance(report.results["probe"], dict)
    assert "AS601" in {f.rule_id for f in report.findings}
    assert report.verdict.decision is Decision.FAIL
    assert not [e for e in report.errors if e.stage == "probe"]


def test_pipeline_records_misfit_as_stage_error(zoo: dict[str, Path]) -> None:
    from adapterscan.pipeline import ScanOptions, scan

    opts = ScanOptions(base=str(zoo["base"]), probe=OPTS)
    report = scan(zoo["misfit"], options=opts)
    assert any(e.stage == "probe" and "do not fit" in e.message for e in report.errors)
    assert report.results["probe"] is None


def test_as604_refusal_direction_collapses_under_harmful_adapter(zoo: dict[str, Path]) -> None:
    emit, result = _probe(zoo["harmful"], zoo["base"])
    [finding] = [f for f in emit.findings if f.rule_id == "AS604"]
    shift = _signal(result, "refusal_direction")
    assert isinstance(shift["mean_relative_drop"], float) and shift["mean_relative_drop"] >= 0.5
    assert finding.evidence["refusal_direction"] == shift
    # Negative: the no-op adapter leaves the direction alone (no finding at all).
    assert not _probe(zoo["noop"], zoo["base"])[0].findings


def test_as602_erosion_reported_below_the_removal_threshold(zoo: dict[str, Path]) -> None:
    # With AS601's bar out of reach, the same measured drop is reported as erosion instead.
    emit, _ = _probe(zoo["harmful"], zoo["base"], params={"AS601": {"min_drop": 1.01}})
    ids = {f.rule_id for f in emit.findings}
    assert "AS602" in ids and "AS601" not in ids
    assert "AS602" not in {f.rule_id for f in _probe(zoo["noop"], zoo["base"])[0].findings}


def test_as603_over_refusal_detected(zoo: dict[str, Path]) -> None:
    emit, result = _probe(zoo["refuse_all"], zoo["base"])
    over = _signal(result, "over_refusal_judge")
    assert isinstance(over["drift"], float) and over["drift"] >= 0.15
    assert "AS603" in {f.rule_id for f in emit.findings}
    harmful_emit, _ = _probe(zoo["harmful"], zoo["base"])
    assert "AS603" not in {f.rule_id for f in harmful_emit.findings}


def test_as606_behaviour_shift_threshold(zoo: dict[str, Path]) -> None:
    # The harmful adapter moves harmless prompts' next-token distribution only slightly: below
    # the default bar, above a bar the policy lowers to 1e-5 nats.
    emit, result = _probe(zoo["harmful"], zoo["base"])
    assert "AS606" not in {f.rule_id for f in emit.findings}
    shift = _signal(result, "behaviour_shift")["harmless"]
    assert isinstance(shift, dict)
    lowered, _ = _probe(zoo["harmful"], zoo["base"], params={"AS606": {"min_mean_kl": 1e-5}})
    [finding] = [f for f in lowered.findings if f.rule_id == "AS606"]
    assert finding.evidence["group"] == "harmless"


def test_base_cache_reuses_measurements_without_changing_results(zoo: dict[str, Path]) -> None:
    opts = ProbeOptions(suites=SUITES, max_new_tokens=10, threads=1, trigger_search=False)
    cache = BaseCache()
    _, first = _probe(zoo["harmful"], zoo["base"], opts, cache=cache)
    emit, second = _probe(zoo["harmful"], zoo["base"], opts, cache=cache)
    _, fresh = _probe(zoo["harmful"], zoo["base"], opts)
    assert cache.hits == 1
    assert second["signals"] == fresh["signals"] == first["signals"]
    assert "base_generate" not in second["timings"]  # type: ignore[operator]
    assert "AS601" in {f.rule_id for f in emit.findings}


def test_probe_sends_nothing_to_the_hub(zoo: dict[str, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """An adapter naming a Hub base: PEFT's "auto" embedding check would ask the Hub for that
    base's config while the probe lists what the adapter must ship; the probe never lets it."""
    import peft.utils.save_and_load as peft_io

    asked: list[object] = []
    real = peft_io.check_file_exists_on_hf_hub
    monkeypatch.setattr(peft_io, "check_file_exists_on_hf_hub",
                        lambda *a, **k: asked.append(a) or real(*a, **k))
    adapter = tmp_path / "named"
    shutil.copytree(zoo["harmful"], adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "someone/base-model"
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    opts = ProbeOptions(suites=SUITES, max_new_tokens=6, threads=1, trigger_search=False)
    _probe(adapter, zoo["base"], opts)
    assert asked == []
