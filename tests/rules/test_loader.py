from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapterscan.errors import RuleError
from adapterscan.rules.catalog import known_checks
from adapterscan.rules.loader import default_signatures_dir, load_ruleset

GOOD = (default_signatures_dir() / "rules" / "AS101.toml").read_text()


def _sigdir(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "sig"
    shutil.copytree(default_signatures_dir() / "schema", root / "schema")
    (root / "rules").mkdir()
    for name, text in files.items():
        (root / "rules" / name).write_text(text)
    return root


def test_bundled_ruleset_loads_and_covers_every_check() -> None:
    rs = load_ruleset()
    assert {r.check for r in rs.rules} == known_checks()
    assert len(rs.digest) == 64


def test_rule_naming_unknown_check_fails(tmp_path: Path) -> None:
    root = _sigdir(tmp_path, {"AS101.toml": GOOD.replace("integrity.sha256_mismatch",
                                                           "integrity.nothing_here")})
    with pytest.raises(RuleError, match="no analyzer implements"):
        load_ruleset(root, checks=frozenset({"integrity.nothing_here_either"}))


def test_check_without_rule_fails(tmp_path: Path) -> None:
    root = _sigdir(tmp_path, {"AS101.toml": GOOD})
    with pytest.raises(RuleError, match="without a rule"):
        load_ruleset(root, checks=frozenset({"integrity.sha256_mismatch", "other.check"}))


def test_schema_violation_names_file_and_field(tmp_path: Path) -> None:
    root = _sigdir(tmp_path, {"AS101.toml": GOOD.replace('severity = "critical"',
                                                           'severity = "apocalyptic"')})
    with pytest.raises(RuleError, match=r"AS101.toml: schema violation at severity"):
        load_ruleset(root, checks=frozenset({"integrity.sha256_mismatch"}))


def test_duplicate_id_and_file_name_mismatch(tmp_path: Path) -> None:
    root = _sigdir(tmp_path, {"AS102.toml": GOOD})
    with pytest.raises(RuleError, match="file name must be the rule id"):
        load_ruleset(root, checks=frozenset({"integrity.sha256_mismatch"}))


def test_duplicate_check_is_rejected(tmp_path: Path) -> None:
    second = GOOD.replace('id = "AS101"', 'id = "AS102"').replace(
        'name = "sha256-mismatch"', 'name = "other-name"')
    root = _sigdir(tmp_path, {"AS101.toml": GOOD, "AS102.toml": second})
    with pytest.raises(RuleError, match="duplicate check"):
        load_ruleset(root, checks=frozenset({"integrity.sha256_mismatch"}))


def test_digest_changes_with_rule_bytes(tmp_path: Path) -> None:
    checks = frozenset({"integrity.sha256_mismatch"})
    a = load_ruleset(_sigdir(tmp_path / "a", {"AS101.toml": GOOD}), checks=checks)
    b = load_ruleset(_sigdir(tmp_path / "b", {"AS101.toml": GOOD + "\n"}), checks=checks)
    assert a.digest != b.digest


def test_validated_rule_set_is_cached_by_digest(tmp_path: Path) -> None:
    checks = frozenset({"integrity.sha256_mismatch"})
    root, cache = _sigdir(tmp_path, {"AS101.toml": GOOD}), tmp_path / "cache"
    fresh = load_ruleset(root, checks=checks, cache_dir=cache)
    (entry,) = cache.glob("*.json")
    again = load_ruleset(root, checks=checks, cache_dir=cache)
    assert again == fresh and again.rules == fresh.rules
    assert again.rules == load_ruleset(root, checks=checks, use_cache=False).rules
    # Any changed byte is another key: the edit is validated, not served from the cache.
    (root / "rules" / "AS101.toml").write_text(GOOD.replace('severity = "critical"',
                                                            'severity = "apocalyptic"'))
    with pytest.raises(RuleError, match="schema violation at severity"):
        load_ruleset(root, checks=checks, cache_dir=cache)
    # So is another set of implemented checks.
    with pytest.raises(RuleError, match="without a rule"):
        load_ruleset(_sigdir(tmp_path / "b", {"AS101.toml": GOOD}), cache_dir=cache,
                     checks=checks | {"other.check"})
    assert [p.name for p in cache.glob("*.json")] == [entry.name]


def test_broken_cache_entry_is_ignored_and_rewritten(tmp_path: Path) -> None:
    checks = frozenset({"integrity.sha256_mismatch"})
    root, cache = _sigdir(tmp_path, {"AS101.toml": GOOD}), tmp_path / "cache"
    fresh = load_ruleset(root, checks=checks, cache_dir=cache)
    (entry,) = cache.glob("*.json")
    for junk in (b"{not json", b'{"tables": [{"id": "AS101"}]}', b"[]"):
        entry.write_bytes(junk)
        assert load_ruleset(root, checks=checks, cache_dir=cache).rules == fresh.rules
        assert b"sha256-mismatch" in entry.read_bytes()
