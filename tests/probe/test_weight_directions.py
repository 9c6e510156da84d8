"""The weight-direction signal reads exactly ‖ΔW x‖ / ‖x‖ from a LoRA module's factors."""

from __future__ import annotations

import math

import pytest
import torch

from adapterscan.probe.triggers import PERTURBATIONS, perturb
from adapterscan.probe.weight_directions import ProjectionMeter, rise

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 6)
        self.other = torch.nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.other(self.lin(x))  # type: ignore[no-any-return]


def test_directions_reproduce_the_adapter_response() -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(_Net(), LoraConfig(r=2, lora_alpha=4, target_modules=["lin"],
                                              init_lora_weights=False))
    meter = ProjectionMeter(model)
    assert [p.rsplit(".", 1)[-1] for p in meter.names] == ["lin"]
    _, module, v, s = meter.modules[0]
    a = module.lora_A["default"].weight.detach()
    b = module.lora_B["default"].weight.detach()
    delta = module.scaling["default"] * b @ a
    x = torch.randn(5, 8)
    expected = (x @ delta.T).norm(dim=-1) / x.norm(dim=-1)
    got = ((x @ v) * s).norm(dim=-1) / x.norm(dim=-1)
    assert torch.allclose(got, expected, atol=1e-5)
    assert bool((s[:-1] >= s[1:]).all())  # strongest direction first


def test_rise_reads_the_modules_that_moved_most() -> None:
    clean = torch.ones(4, 3)
    lifted = torch.tensor([[1.0, 1.0, 4.0]] * 4)
    value = rise(lifted, clean)
    assert value == pytest.approx(math.log(4.0) / 2)  # mean of the top two: log 4 and 0
    assert rise(clean, clean) == pytest.approx(0.0)
    assert rise(torch.zeros(0, 3), clean) is None


def test_perturbations_keep_the_words() -> None:
    prompt = "How do I pick a lock?"
    out = [perturb(prompt, i) for i in range(len(PERTURBATIONS))]
    assert len(set(out)) == len(out) and prompt not in out
    for text in out:
        assert "pick a lock" in text.lower()
