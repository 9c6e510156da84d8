"""Fail closed: weights that no reader recognised, or an adapter with no module analysed, make
the scan incomplete. An unread tensor is never reported as clean."""

from __future__ import annotations

from adapterscan.emit import Emitter
from adapterscan.static.formats.model import AdapterModel, Format

_SHOWN = 3


def fail_closed(model: AdapterModel, analysed: int, emit: Emitter,
                read_elsewhere: frozenset[str] = frozenset()) -> None:
    """Skips for unread tensors; `analysed` counts modules whose statistics were computed;
    `read_elsewhere`: files whose every tensor another check accounted for (a prompt-learning
    adapter's one tensor, config/prompt_learning.py)."""
    for f in model.files:
        if f.path in read_elsewhere:
            continue
        total = len(f.modules) + len(f.others) + len(f.unrecognised)
        names = [t.info.name for t in f.unrecognised[:_SHOWN]]
        unsupported = ", ".join(f"{k} ({v} tensors)" for k, v in sorted(f.unsupported.items()))
        if not f.modules and total:
            emit.skip(f.path, f"no adapter module recognised ({f.note}): {total} tensors not "
                      "analysed" + (f"; recognised but not analysed: {unsupported}"
                                    if unsupported else ""))
        elif f.unrecognised:
            what = "the" + (" LyCORIS/kohya" if f.format is Format.KOHYA else
                            f" {f.format.value}")
            emit.skip(f.path, f"{len(f.unrecognised)} tensors are not read by {what} reader "
                      f"(first: {', '.join(names)})" + (f"; recognised but not analysed: "
                                                        f"{unsupported}" if unsupported else ""))
    modules = sum(len(f.modules) for f in model.files)
    if modules and not analysed:
        emit.skip(".", f"none of the {modules} adapter modules could be analysed (see the "
                  "findings and skips above)")
