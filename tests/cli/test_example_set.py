"""The example set `adapterscan demo` uses: the shipped one while current, labelled."""

from __future__ import annotations

from adapterscan.cli.example_set import build_examples
from adapterscan.examples import shipped_dir
from adapterscan.examples.specs import SPECS


def test_cached_examples_are_labelled() -> None:
    """The set the demo uses (shipped, or built once into the cache)."""
    examples = build_examples()
    assert {e.name for e in examples} == {s.name for s in SPECS}
    assert all(e.path.parent == shipped_dir() for e in examples)
    for e in examples:
        assert (e.path / "adapter_model.safetensors").is_file()
        assert (e.trigger is not None) == (e.expected_class == "backdoor")
