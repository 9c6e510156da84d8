"""What a file is, by name and by its first bytes (a bounded read that never follows links)."""

from __future__ import annotations

import os
import posixpath
import stat
import struct
from pathlib import Path

from adapterscan.static.model import FileClass
from adapterscan.static.pickle.ops import archive_kind, sniff_pickle

PICKLE_EXT = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dill"})
ARCHIVE_EXT = frozenset({".7z", ".gz", ".tgz", ".tar", ".rar", ".xz", ".bz2", ".zst", ".lzma"})
ZIP_EXT = frozenset({".zip", ".npz"})
NATIVE_EXT = frozenset({".so", ".dll", ".dylib", ".exe", ".elf", ".msi", ".com"})
CODE_EXT = frozenset({".py", ".pyc", ".pyo", ".pyw", ".ipynb", ".sh", ".bash", ".zsh", ".ps1",
                      ".bat", ".cmd", ".js", ".mjs", ".ts", ".rb", ".pl", ".lua", ".vbs"})
CODE_NAMES = frozenset({"setup.py", "pyproject.toml", "dockerfile", "makefile", "setup.cfg",
                        "containerfile", "environment.yml", "pipfile", "conftest.py"})
TOKENIZER_NAMES = frozenset({"tokenizer.json", "tokenizer_config.json",
                             "special_tokens_map.json", "added_tokens.json", "vocab.json",
                             "vocab.txt", "merges.txt", "tokenizer.model", "spiece.model",
                             "sentencepiece.bpe.model", "vocab.model"})
TEMPLATE_NAMES = frozenset({"chat_template.jinja", "chat_template.json"})
CONFIG_EXT = frozenset({".json", ".yaml", ".yml", ".toml", ".cfg", ".ini"})
DOC_EXT = frozenset({".md", ".rst", ".txt", ".markdown", ".html", ".pdf"})
DOC_NAMES = ("readme", "license", "licence", "notice", "copying", "authors", "changelog",
             "citation", ".gitattributes", ".gitignore")
DATA_EXT = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".csv", ".tsv",
                      ".parquet", ".arrow", ".npy", ".onnx", ".h5", ".msgpack",
                      ".tiktoken", ".wav", ".mp3"})
# Text formats by extension; binary magic inside them is a disguise.
TEXT_EXT = CODE_EXT - {".pyc", ".pyo"} | CONFIG_EXT | DOC_EXT | {".jinja", ".j2", ".csv",
                                                                   ".tsv", ".svg"}
STRONG = frozenset({"pickle", "zip", "archive", "executable", "safetensors", "gguf"})


def ext_of(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[1].lower()


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
    if ext == ".safetensors":
        return FileClass.SAFETENSORS, "extension .safetensors"
    if ext == ".gguf":
        return FileClass.GGUF, "extension .gguf"
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
    if base in TEMPLATE_NAMES or ext in (".jinja", ".j2"):
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
