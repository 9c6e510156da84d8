"""The example set `adapterscan demo` and `adapterscan examples build` use.

The shipped (or cached) set is used when it is current; only a stale or missing set, or a
rebuild, imports the workshop (`adapterscan.training`) to train one, so the demo's usual path
loads no training code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adapterscan.examples import ExampleAdapter, current_examples


def build_examples(out: Path | None = None, *, force: bool = False,
                   progress: Callable[[str], None] | None = None) -> list[ExampleAdapter]:
    """The current example set under `out` (default: shipped, else user cache), trained first
    when there is none or `force`."""
    found = None if force else current_examples(out)
    if found is not None:
        return found
    from adapterscan.training.examples.build import build_examples as train_examples

    # force: the current set was looked for above; the workshop need not look again
    return train_examples(out, force=True, progress=progress)
