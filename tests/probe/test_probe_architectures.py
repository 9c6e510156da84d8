"""The probe on bases that are not Llama-shaped: GPT-2 (Conv1D layers, `fan_in_fan_out`
adapters) and GPT-NeoX (fused query_key_value). Every stage runs and the backdoor is found;
on GPT-2 the growth stage once found no adapted layer (`transformer.h.N.`), then raised
IndexError on its empty vocabulary pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.probe import factories_probe as fp
from tests.probe.test_probe import _probe

pytest.importorskip("torch")
pytest.importorskip("peft")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "neox"])
def test_trigger_backdoor_is_found_on_other_architectures(arch: str, tmp_path: Path) -> None:
    built = fp.build_set(tmp_path, {"trigger": ("trigger", 50)}, arch=arch)
    emit, result = _probe(built["trigger"], built["base"])
    assert not emit.errors and not emit.skipped, (emit.errors, emit.skipped)
    assert "AS605" in {f.rule_id for f in emit.findings}
    triggers = result["triggers"]
    assert isinstance(triggers, dict)
    # Growth found its layer and input norm (`transformer.h.N.ln_1` on GPT-2) and grew strings.
    assert triggers["growth"], triggers
