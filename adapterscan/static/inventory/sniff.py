"""What a file is, by name and by its first bytes (a bounded read that never follows links)."""

from __future__ import annotations

import os
import posixpath
import stat
import struct
from pathlib import Path

from adapterscan.file_kinds import (
    ARCHIVE_EXT,
    CODE_EXT,
    CONFIG_EXT,
    DATA_EXT,
    DOC_EXT,
    GGUF_EXT,
    NATIVE_EXT,
    PICKLE_EXT,
    SAFETENSORS_EXT,
    TEMPLATE_EXT,
    ZIP_EXT,
    ext_of,
)
from adapterscan.static.model import FileClass
from adapterscan.static.pickle.ops import archive_kind, sniff_pickle

CODE_NAMES = frozenset({"setup.py", "pyproject.toml", "dockerfile", "makefile", "setup.cfg",
                        "containerfile", "environment.yml", "pipfile", "conftest.py"})
TOKENIZER_NAMES = frozenset({"tokenizer.json", "tokenizer_config.json",
                             "special_tokens_map.json", "added_tokens.json", "vocab.json",
                             "vocab.txt", "merges.txt", "tokenizer.model", "spiece.model",
                             "sentencepiece.bpe.model", "vocab.model"})
TEMPLATE_NAMES = frozenset({"chat_template.jinja", "chat_template.json"})
DOC_NAMES = ("readme", "license", "licence", "notice", "copying", "authors", "changelog",
             "citation", ".gitattributes", ".gitignore")


def read_head(root: Path, rel: str, n: int) -> bytes:
    """The first n bytes, never following a symlink and never blocking on a fifo."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(root / rel, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        return os.read(fd, n)
    finally:
        os.close(fd)


def content_kind(head: bytes, size: int) -> tuple[str, str]:
    """(kind, detail) from leading bytes: kind in pickle, zip, archive, executable, script,
    safetensors, data, text, empty, unknown."""
    if not head:
        return "empty", "no bytes"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip", "zip magic PK"
    arch = archive_kind(head)
    if arch:
        return "archive", f"{arch} magic"
    if head.startswith(b"\x7fELF"):
        return "executable", "ELF magic"
    if head.startswith(b"MZ"):
        return "executable", "PE (MZ) magic"
    if head[:4] in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                    b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        return "executable", "Mach-O magic"
    if head.startswith(b"#!"):
        return "script", "shebang"
    if sniff_pickle(head):
        return "pickle", f"pickle opcodes (first byte 0x{head[0]:02x})"
    if len(head) >= 9 and head[8:9] == b"{":
        n = struct.unpack("<Q", head[:8])[0]
        if 0 < n <= size - 8:
            return "safetensors", "safetensors header"
    if head.startswith(b"\x93NUMPY"):
        return "npy", "NumPy array (object arrays hold a pickle)"
    if head.startswith(b"GGUF"):
        return "gguf", "GGUF magic"
    if head.startswith((b"\x89HDF", b"\x89PNG", b"\xff\xd8\xff",
                        b"GIF8", b"PAR1", b"ARROW1")):
        return "data", "known data format magic"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = head[: exc.start].decode("utf-8") if exc.start >= len(head) - 4 else ""
    if text and sum(c.isprintable() or c in "\n\r\t" for c in text) >= 0.95 * len(text):
        return "text", "UTF-8 text"
    return "unknown", "unrecognised bytes"


def by_name(path: str) -> tuple[FileClass | None, str]:
    base = posixpath.basename(path).lower()
    ext = ext_of(path)
    if ext == SAFETENSORS_EXT:
        return FileClass.SAFETENSORS, f"extension {SAFETENSORS_EXT}"
    if ext == GGUF_EXT:
        return FileClass.GGUF, f"extension {GGUF_EXT}"
    if base == "adapter_config.json":
        return FileClass.ADAPTER_CONFIG, "adapter_config.json"
    if ext in PICKLE_EXT:
        return FileClass.PICKLE, f"extension {ext}"
    if ext in ZIP_EXT:
        return FileClass.ZIP, f"extension {ext}"
    if ext in ARCHIVE_EXT:
        return FileClass.ARCHIVE, f"extension {ext}"
    if ext in NATIVE_EXT:
        return FileClass.EXECUTABLE, f"extension {ext}"
    if base in TEMPLATE_NAMES or ext in TEMPLATE_EXT:
        return FileClass.CHAT_TEMPLATE, "chat template file"
    if base in TOKENIZER_NAMES or (ext == ".model" and "token" in base) or ext == ".tiktoken":
        return FileClass.TOKENIZER, "tokenizer file"
    if ext in CODE_EXT or base in CODE_NAMES or (base.startswith("requirements")
                                                and ext in (".txt", ".in")):
        return FileClass.CODE, "code or dependency file"
    if ext == ".model":
        return FileClass.TOKENIZER, "sentencepiece model"
    if ext in CONFIG_EXT:
        return FileClass.CONFIG_JSON, f"config file {ext}"
    if ext in DOC_EXT or base.startswith(DOC_NAMES):
        return FileClass.DOCUMENT, "document"
    if ext in DATA_EXT:
        return FileClass.OTHER_DATA, f"data file {ext}"
    return None, "no known extension"
