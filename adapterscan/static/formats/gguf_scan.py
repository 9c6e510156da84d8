"""The static stage's GGUF step: parse with our bounds, report what the header carries."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.formats import checks as C
from adapterscan.static.formats.gguf import GgufArray, GgufError, GgufFile, parse_gguf
from adapterscan.static.inventory.checks import CHAT_TEMPLATE
from adapterscan.static.limits import StaticLimits

_LISTED = 20


def scan_gguf_file(path: Path, rel: str, emit: Emitter, limits: StaticLimits) -> GgufFile | None:
    """A validated header, or None with a finding (hostile or broken) or a skip (unsupported)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            gguf = parse_gguf(fh, size, rel, max_tensors=limits.max_tensors)
        except GgufError as exc:
            if exc.unsupported:
                emit.skip(rel, f"GGUF header not read: {exc.reason}")
                return None
            emit.emit(C.GGUF_MALFORMED, f"{rel}: {exc.reason}", file=rel, offset=exc.offset,
                      evidence={"reason": exc.reason, "offset": exc.offset, "file_size": size,
                                "over_cap": exc.over_cap})
            if exc.over_cap:
                emit.skip(rel, f"GGUF header over the scanner's caps: {exc.reason}")
            return None
    _trailing(gguf, emit)
    _tokenizer(gguf, emit)
    return gguf


def _trailing(gguf: GgufFile, emit: Emitter) -> None:
    if gguf.trailing_bytes > 0:
        emit.emit(C.GGUF_TRAILING, f"{gguf.path}: {gguf.trailing_bytes} bytes after the last "
                  "tensor's data: no GGUF reader looks at them", file=gguf.path,
                  offset=gguf.file_size - gguf.trailing_bytes,
                  evidence={"trailing_bytes": gguf.trailing_bytes, "file_size": gguf.file_size,
                            "alignment": gguf.alignment})


def _tokenizer(gguf: GgufFile, emit: Emitter) -> None:
    """Tokenizer and chat-template keys in a GGUF adapter are evidence, as in repo files."""
    template = gguf.string("tokenizer.chat_template")
    if template is not None:
        emit.emit(CHAT_TEMPLATE, "chat template in the GGUF metadata: it decides the "
                  "prompt the model sees", file=gguf.path, key="tokenizer.chat_template",
                  evidence={"source": gguf.path, "length": len(template), "sha256":
                            hashlib.sha256(template.encode("utf-8", "surrogatepass")).hexdigest()})
    keys = sorted(k for k in gguf.kv if k.startswith("tokenizer.")
                  and k != "tokenizer.chat_template")
    if keys and gguf.string("general.type") == "adapter":
        shown: dict[str, JSONValue] = {}
        for k in keys[:_LISTED]:
            v = gguf.kv[k]
            shown[k] = {"type": v.type, "count": v.count} if isinstance(v, GgufArray) \
                else str(v)[:200]
        emit.emit(C.GGUF_TOKENIZER, f"{gguf.path}: a LoRA adapter carrying {len(keys)} tokenizer "
                  f"key(s) ({', '.join(keys[:5])}): adapters do not ship a tokenizer",
                  file=gguf.path, key=keys[0], evidence={"keys": shown, "count": len(keys)})
