"""The checks this build implements, gathered from each analyzer's `CHECKS` constant.

Each analyzer module declares the check names it can emit. A rule in signatures/ must name one of
them, and every declared check must have a rule: the loader and the conformance test enforce both.
The module list is explicit (no registry filled at import time). Modules listed here must stay
cheap to import: no torch, transformers or peft at module level.
"""

from __future__ import annotations

import importlib

CHECK_MODULES: tuple[str, ...] = (
    "adapterscan.pipeline_checks",
    "adapterscan.static.safetensors.checks",
    "adapterscan.static.config.checks",
    "adapterscan.static.inventory.checks",
    "adapterscan.static.pickle.checks",
    "adapterscan.static.weights.checks",
    "adapterscan.static.formats.checks",
    "adapterscan.static.delta.checks",
    "adapterscan.fetch.checks",
    "adapterscan.probe.checks",
    "adapterscan.provenance.checks",
)


def known_checks() -> frozenset[str]:
    """Every check name implemented by this build."""
    names: set[str] = set()
    for module_name in CHECK_MODULES:
        module = importlib.import_module(module_name)
        names.update(module.CHECKS)
    return frozenset(names)
