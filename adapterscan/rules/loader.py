"""Load and validate signatures/: schema, unique ids and names, and checks that exist.

Validation (a TOML parse and a JSON-schema check of ~150 files) costs ~0.1 s, more than a small
scan. A rule set that validated is cached as JSON under the user's cache folder, keyed by the
digest of every byte it came from (rule files, schema) and of the checks this build implements;
a later load reads the rule files, recomputes that key and, when it matches, builds the same
RuleSet from the cache without parsing or validating again. A missing, unreadable or malformed
cache entry is ignored (full validation, then the entry is rewritten).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapterscan.errors import RuleError
from adapterscan.findings import Confidence, Severity
from adapterscan.rules.catalog import known_checks
from adapterscan.rules.model import ParamValue, Rule, RuleDocs, RuleSet

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_CACHE_FORMAT = b"adapterscan-rules-cache/1"


def default_cache_dir() -> Path:
    """Where validated rule sets are cached (XDG_CACHE_HOME respected)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "adapterscan" / "rules"


def default_signatures_dir() -> Path:
    """signatures/ from the wheel (adapterscan/_signatures) or from a source checkout."""
    for candidate in (_PACKAGE_DIR / "_signatures", _PACKAGE_DIR.parent / "signatures"):
        if (candidate / "schema" / "rule.schema.json").is_file():
            return candidate
    raise RuleError("cannot find the bundled signatures/ directory",
                    hint="reinstall adapterscan; the wheel ships it as adapterscan/_signatures")


def _rule_from_table(table: Mapping[str, Any]) -> Rule:
    docs = table["docs"]
    params: dict[str, ParamValue] = dict(table.get("params", {}))
    return Rule(
        id=table["id"], name=table["name"], stage=table["stage"], check=table["check"],
        severity=Severity[table["severity"].upper()],
        confidence=Confidence[table["confidence"].upper()],
        summary=table["summary"],
        docs=RuleDocs(what=docs["what"], why=docs["why"], example=docs["example"],
                      references=tuple(docs["references"])),
        params=params,
    )


def load_ruleset(directory: Path | None = None, *, checks: frozenset[str] | None = None,
                 cache_dir: Path | None = None, use_cache: bool = True) -> RuleSet:
    """Read every `rules/*.toml` under `directory`, validate, and return the rule set.

    Raises RuleError naming the file and the reason for: a schema violation, a duplicate id or
    name or check, a rule whose check this build does not implement, or an implemented check
    without a rule (an analyzer whose findings could never be reported). A rule set that
    validated before, byte for byte, comes from the cache (`cache_dir`, default
    default_cache_dir(); `use_cache=False` always validates).
    """
    root = directory or default_signatures_dir()
    implemented = known_checks() if checks is None else checks
    schema_raw = (root / "schema" / "rule.schema.json").read_bytes()
    files = [(path, path.read_bytes()) for path in sorted((root / "rules").glob("*.toml"))]
    digest = hashlib.sha256()
    for path, raw in files:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(raw).digest())
    key = hashlib.sha256(b"\0".join([_CACHE_FORMAT, digest.digest(), schema_raw,
                                       *sorted(c.encode() for c in implemented)])).hexdigest()
    cache = (cache_dir or default_cache_dir()) / f"{key}.json"
    if use_cache:
        tables = _read_cache(cache)
        if tables is not None:
            return RuleSet(rules=tuple(_rule_from_table(t) for t in tables),
                           digest=digest.hexdigest())
    tables = _validate(root, schema_raw, files, implemented)
    if use_cache:
        _write_cache(cache, tables)
    return RuleSet(rules=tuple(_rule_from_table(t) for t in tables), digest=digest.hexdigest())


def _validate(root: Path, schema_raw: bytes, files: list[tuple[Path, bytes]],
              implemented: frozenset[str]) -> list[dict[str, Any]]:
    import tomllib  # compiles its regexes on import (~15 ms): only when validating

    import jsonschema  # ~50 ms of imports: only when a rule set is validated

    validator = jsonschema.Draft202012Validator(json.loads(schema_raw.decode("utf-8")))
    tables: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path, raw in files:
        try:
            table = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RuleError(f"{path}: not valid TOML: {exc}") from exc
        errors = sorted(validator.iter_errors(table), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "<root>"
            raise RuleError(f"{path}: schema violation at {where}: {errors[0].message}")
        if path.stem != table["id"]:
            raise RuleError(f"{path}: file name must be the rule id ({table['id']}.toml)")
        for key in ("id", "name", "check"):
            marker = f"{key}:{table[key]}"
            if marker in seen:
                raise RuleError(f"{path}: duplicate {key} {table[key]!r} (also in {seen[marker]})")
            seen[marker] = path
        if table["check"] not in implemented:
            raise RuleError(f"{path}: rule {table['id']} names check {table['check']!r}, "
                            "which no analyzer implements")
        tables.append(table)
    missing = implemented - {t["check"] for t in tables}
    if missing:
        raise RuleError(f"{root}: implemented checks without a rule: {', '.join(sorted(missing))}")
    return tables


def _read_cache(path: Path) -> list[dict[str, Any]] | None:
    try:
        loaded = json.loads(path.read_bytes())
        tables = loaded["tables"] if isinstance(loaded, dict) else None
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            return None
        for t in tables:  # a malformed entry must never half-load: build every rule once here
            _rule_from_table(t)
        return tables
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_cache(path: Path, tables: list[dict[str, Any]]) -> None:
    """Best effort (a read-only home only costs the next load a validation); atomic rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rules-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"tables": tables}, fh)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        return
