"""Load and validate signatures/: schema, unique ids and names, and checks that exist."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from adapterscan.errors import RuleError
from adapterscan.findings import Confidence, Severity
from adapterscan.rules.catalog import known_checks
from adapterscan.rules.model import ParamValue, Rule, RuleDocs, RuleSet

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


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


def load_ruleset(directory: Path | None = None, *, checks: frozenset[str] | None = None) -> RuleSet:
    """Read every `rules/*.toml` under `directory`, validate, and return the rule set.

    Raises RuleError naming the file and the reason for: a schema violation, a duplicate id or
    name or check, a rule whose check this build does not implement, or an implemented check
    without a rule (an analyzer whose findings could never be reported).
    """
    root = directory or default_signatures_dir()
    schema = json.loads((root / "schema" / "rule.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    implemented = known_checks() if checks is None else checks
    digest = hashlib.sha256()
    rules: list[Rule] = []
    seen: dict[str, Path] = {}
    for path in sorted((root / "rules").glob("*.toml")):
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(raw).digest())
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
        rules.append(_rule_from_table(table))
    missing = implemented - {r.check for r in rules}
    if missing:
        raise RuleError(f"{root}: implemented checks without a rule: {', '.join(sorted(missing))}")
    return RuleSet(rules=tuple(rules), digest=digest.hexdigest())
