"""The whole rule set: unique ids, a current doc page, an existing check and a test per rule."""

from __future__ import annotations

import re
from pathlib import Path

from adapterscan.rules.docgen import check_docs
from adapterscan.rules.loader import load_ruleset

ROOT = Path(__file__).resolve().parents[2]


def test_ids_and_names_unique_and_in_range() -> None:
    rs = load_ruleset()
    ids = [r.id for r in rs.rules]
    assert len(ids) == len(set(ids))
    assert len({r.name for r in rs.rules}) == len(ids)
    ranges = {"fetch": "1", "provenance": "7", "probe": "6"}
    for r in rs.rules:
        if r.stage in ranges:
            assert r.id[2] == ranges[r.stage], r.id


def test_rule_docs_are_current() -> None:
    assert check_docs(load_ruleset(), ROOT / "docs" / "rules") == []


def test_every_rule_has_a_test_fixture() -> None:
    """Each rule id must be exercised by a test outside this file (positive and negative)."""
    text = "\n".join(p.read_text("utf-8") for p in (ROOT / "tests").rglob("test_*.py")
                     if p.name != "test_conformance.py")
    mentioned = set(re.findall(r"AS\d{3}", text))
    missing = [r.id for r in load_ruleset().rules if r.id not in mentioned]
    assert missing == [], f"rules without a test that names them: {missing}"
