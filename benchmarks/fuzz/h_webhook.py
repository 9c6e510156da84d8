"""The webhook body parser: the raw request body the service accepts (JSON, then the Hugging
Face delivery), as its routes read it. Its documented error is PayloadError (a 422)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adapterscan.integrations.server.webhook import PayloadError, parse_body

ALLOWED: tuple[type[BaseException], ...] = (PayloadError,)
MAX_LEN = 4096


def prepare(scratch: Path, assets: Path) -> Callable[[bytes], None]:
    def target(raw: bytes) -> None:
        delivery = parse_body(raw)
        for rev in delivery.revisions:
            assert rev.repo == delivery.repo and len(rev.sha) == 40
    return target
