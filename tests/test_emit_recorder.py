"""A Recorder replays findings and skips into an Emitter in the order they were observed."""

from __future__ import annotations

from adapterscan.emit import Emitter, Recorder
from adapterscan.rules.loader import load_ruleset


def test_replay_keeps_order_and_fields() -> None:
    rec = Recorder()
    rec.emit("safetensors.nonfinite", "first", file="a.safetensors", tensor="w", offset=8,
             evidence={"nan": 1})
    rec.skip("b.safetensors", "cannot read")
    rec.emit("safetensors.embedded_magic", "second", file="a.safetensors")
    emit = Emitter(load_ruleset())
    assert not emit.findings
    rec.replay(emit)
    assert [f.message for f in emit.findings] == ["first", "second"]
    first = emit.findings[0]
    assert (first.rule_id, first.location.file, first.location.tensor, first.location.offset,
            first.evidence) == ("AS230", "a.safetensors", "w", 8, {"nan": 1})
    assert [(s.path, s.reason) for s in emit.skipped] == [("b.safetensors", "cannot read")]
