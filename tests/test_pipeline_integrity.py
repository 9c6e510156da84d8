"""AS101: the pipeline compares the bytes it hashed with the digests the origin announced."""

from __future__ import annotations

from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.hashing import sha256_file
from adapterscan.pipeline import _check_expected
from adapterscan.rules.loader import load_ruleset
from adapterscan.source import Entry, EntryType, FetchedSource


def _src(tmp_path: Path, expected: str) -> tuple[FetchedSource, dict[str, str]]:
    f = tmp_path / "adapter_model.safetensors"
    f.write_bytes(b"abc" * 1000)
    src = FetchedSource("x", "hub", tmp_path, (Entry(f.name, EntryType.FILE, 3000),),
                        expected_sha256={f.name: expected})
    return src, {f.name: sha256_file(f)}


def test_as101_mismatch_is_reported(tmp_path: Path) -> None:
    src, digests = _src(tmp_path, "0" * 64)
    emit = Emitter(load_ruleset())
    _check_expected(src, digests, emit)
    assert [f.rule_id for f in emit.findings] == ["AS101"]
    assert emit.findings[0].evidence["actual"] == digests["adapter_model.safetensors"]


def test_as101_match_is_silent(tmp_path: Path) -> None:
    src, digests = _src(tmp_path, "")
    src = FetchedSource(src.source, src.kind, src.root, src.entries,
                        expected_sha256=dict(digests))
    emit = Emitter(load_ruleset())
    _check_expected(src, digests, emit)
    assert emit.findings == ()
