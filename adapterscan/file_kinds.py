"""File kinds by extension: the one table the fetch stage, the static inventory and the pipeline
share (it imports nothing, so every stage may use it).

Names only suggest: the static inventory decides a file's kind by its content as well, and a
name that disagrees with the content is a finding.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

SAFETENSORS_EXT = ".safetensors"
GGUF_EXT = ".gguf"
# Checkpoints torch.load / pickle.load open as weights (PEFT falls back to adapter_model.bin).
TORCH_PICKLE_EXT = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
# Every pickle serialisation: joblib and dill files run code on load like any pickle.
PICKLE_EXT = TORCH_PICKLE_EXT | {".joblib", ".dill"}
# Zip containers whose members the pickle analyzer walks (NumPy archives hold .npy members).
ZIP_EXT = frozenset({".zip", ".npz"})
# NumPy arrays: an object array holds a pickle.
NPY_EXT = frozenset({".npy"})
# What a loader may take as adapter weights: a folder with none of these is not an adapter.
WEIGHTS_EXT = frozenset({SAFETENSORS_EXT, GGUF_EXT}) | TORCH_PICKLE_EXT
# Files the static stage reads to the end (weights, pickles, zip members, arrays): the Hub
# fetcher downloads them whole, never only under its small-file cap.
ANALYSED_EXT = WEIGHTS_EXT | PICKLE_EXT | ZIP_EXT | NPY_EXT

ARCHIVE_EXT = frozenset({".7z", ".gz", ".tgz", ".tar", ".rar", ".xz", ".bz2", ".zst", ".lzma"})
NATIVE_EXT = frozenset({".so", ".dll", ".dylib", ".exe", ".elf", ".msi", ".com"})
CODE_EXT = frozenset({".py", ".pyc", ".pyo", ".pyw", ".ipynb", ".sh", ".bash", ".zsh", ".ps1",
                      ".bat", ".cmd", ".js", ".mjs", ".ts", ".rb", ".pl", ".lua", ".vbs"})
CONFIG_EXT = frozenset({".json", ".yaml", ".yml", ".toml", ".cfg", ".ini"})
DOC_EXT = frozenset({".md", ".rst", ".txt", ".markdown", ".html", ".pdf"})
TEMPLATE_EXT = frozenset({".jinja", ".j2"})
DATA_EXT = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".csv", ".tsv",
                      ".parquet", ".arrow", ".onnx", ".h5", ".msgpack", ".tiktoken", ".wav",
                      ".mp3"}) | NPY_EXT


def ext_of(path: str) -> str:
    """The lower-cased extension of the last path component ("" for `.gitignore`)."""
    return posixpath.splitext(posixpath.basename(path))[1].lower()


def ends_with(path: str, exts: Iterable[str]) -> bool:
    """Does the name end with one of `exts`, case-insensitively (a bare `.bin` counts too)?"""
    return path.lower().endswith(tuple(exts))
