"""Keep third-party chatter (Python warnings, library logging, progress bars) raised inside our
calls out of the user's terminal, and put everything back afterwards.

peft, transformers and huggingface_hub warn about things that are internal to how adapterscan
uses them (a base model name they cannot look up, a deprecated attribute): a user reads those
lines as errors. `quiet()` wraps the few places that call into those libraries. With
`verbose=True`, or ADAPTERSCAN_VERBOSE=1 in the environment (what `--verbose` sets, so that
worker processes inherit it), nothing is hidden.

Everything changed here is process state, saved on entry and restored on exit, nesting safely:
the warnings filters (`warnings.catch_warnings`), the logging threshold (`logging.disable`, the
one switch that also covers libraries first imported inside the block, which configure their own
loggers on import), and the progress-bar switches of transformers and huggingface_hub when those
are already imported (never imported here: the static scan stays free of them).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

VERBOSE_ENV = "ADAPTERSCAN_VERBOSE"


def verbose_requested() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Hidden:
    """What a quiet block kept from the terminal (Python warnings; logging is dropped)."""

    warnings: list[warnings.WarningMessage] = field(default_factory=list)


@contextmanager
def quiet(verbose: bool | None = None) -> Iterator[Hidden]:
    """Hide third-party warnings, log records up to WARNING and progress bars inside the block."""
    hidden = Hidden()
    if verbose_requested() if verbose is None else verbose:
        yield hidden
        return
    before = logging.root.manager.disable
    with warnings.catch_warnings(record=True) as caught, _progress_bars_off():
        logging.disable(max(before, logging.WARNING))
        try:
            yield hidden
        finally:
            logging.disable(before)
            hidden.warnings.extend(caught)


@contextmanager
def _progress_bars_off() -> Iterator[None]:
    tf = sys.modules.get("transformers.utils.logging")
    hub = sys.modules.get("huggingface_hub.utils")
    tf_was_on = bool(tf is not None and tf.is_progress_bar_enabled())
    hub_was_on = bool(hub is not None and not hub.are_progress_bars_disabled())
    if tf is not None and tf_was_on:
        tf.disable_progress_bar()  # also switches huggingface_hub's off
    elif hub is not None and hub_was_on:
        hub.disable_progress_bars()
    try:
        yield
    finally:
        if tf is not None and tf_was_on:
            tf.enable_progress_bar()
        if hub is not None:
            if hub_was_on and hub.are_progress_bars_disabled():
                hub.enable_progress_bars()
            elif not hub_was_on and not hub.are_progress_bars_disabled():
                hub.disable_progress_bars()
