"""Labelled example adapters, built deterministically on the bundled aligned reference model.

The package ships a built set (`shipped_dir()`, made by `adapterscan examples build --out
adapterscan/examples/shipped`), used as long as its recorded cache key matches the specs and the
reference weights (`current_examples()`). Otherwise the workshop trains them (minutes on 2 CPU
cores) into `default_cache_dir()`: `adapterscan.training.examples.build.build_examples`. This
package only locates and reads built sets; it never imports the workshop.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from adapterscan.examples.specs import SPECS, ExpectedClass, Spec

BUILDER_VERSION = 2
MANIFEST = "manifest.json"
_SHIPPED = Path(__file__).resolve().parent / "shipped"


@dataclass(frozen=True)
class ExampleAdapter:
    name: str
    expected_class: ExpectedClass
    path: Path
    trigger: str | None
    description: str

    @property
    def should_reject(self) -> bool:
        return self.expected_class != "benign"


def cache_key() -> str:
    """Changes when the specs, the builder or the reference weights change."""
    from adapterscan.reference import manifest

    h = hashlib.sha256()
    h.update(f"v{BUILDER_VERSION}".encode())
    h.update(repr(SPECS).encode())
    h.update(json.dumps(manifest().get("sha256", {}), sort_keys=True).encode())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """Where built adapters are cached (XDG_CACHE_HOME respected)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adapterscan"


def default_cache_dir() -> Path:
    return cache_root() / "examples" / cache_key()


def shipped_dir() -> Path:
    """The built example set that ships in the package (may be stale: see load_examples)."""
    return _SHIPPED


def load_examples(out: Path, key: str | None = None) -> list[ExampleAdapter] | None:
    """The adapters recorded in `out`/manifest.json, or None when the set is incomplete or was
    built under another cache key (`key`, default: the example set's)."""
    mf = out / MANIFEST
    if not mf.is_file():
        return None
    data = json.loads(mf.read_text())
    if data.get("cache_key") != (key or cache_key()):
        return None
    result = []
    for e in data["adapters"]:
        path = out / e["name"]
        if not (path / "adapter_model.safetensors").is_file():
            return None
        result.append(ExampleAdapter(e["name"], e["expected_class"], path, e["trigger"],
                                     e["description"]))
    return result


def current_examples(out: Path | None = None) -> list[ExampleAdapter] | None:
    """The complete, current set in `out`; without `out`, the shipped set when it is current,
    else the one in the user cache. None when it must be built."""
    if out is None:
        shipped = load_examples(_SHIPPED)
        if shipped is not None:
            return shipped
    return load_examples(Path(out) if out is not None else default_cache_dir())


def spec_by_name(name: str) -> Spec:
    for s in SPECS:
        if s.name == name:
            return s
    raise KeyError(name)
