"""The zip reader on its own: central directory, local headers, inflating every member.
Its documented error is ZipUnreadable (the caller turns it into a finding)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from adapterscan.static.pickle import zip_container as zc

ALLOWED: tuple[type[BaseException], ...] = (zc.ZipUnreadable,)
MAX_LEN = 16384
CAP = 1 << 20


def prepare(scratch: Path, assets: Path) -> Callable[[bytes], None]:
    def target(raw: bytes) -> None:
        f = io.BytesIO(raw)
        members, _ = zc.open_zip(f, len(raw), 1000)
        for m in members:
            _, total, capped = zc.member_digest(f, m, CAP)
            assert capped or total <= CAP
            zc.MemberStream(zc.iter_member(f, m, CAP)).read(64)
    return target
