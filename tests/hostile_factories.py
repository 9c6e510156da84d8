"""Hostile adapter folders for the end-to-end suite, all generated; nothing here pickles a callable.

Pickles are assembled from raw opcode bytes (see pickletools for the opcode table) so that the
payloads exist only as bytes and can never run inside the test process.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.factories import adapter_config, lora_tensors, raw_safetensors, safetensors_bytes

# --- pickle opcode builders -------------------------------------------------------------------

PROTO4 = b"\x80\x04"
STOP = b"."
MARK = b"("
TUPLE1 = b"\x85"
REDUCE = b"R"
MEMOIZE = b"\x94"
POP = b"0"
STACK_GLOBAL = b"\x93"


def sbu(text: str) -> bytes:
    """SHORT_BINUNICODE."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def binput(i: int) -> bytes:
    return b"q" + bytes([i])


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


def short_binbytes(data: bytes) -> bytes:
    if len(data) < 256:
        return b"C" + bytes([len(data)]) + data
    return b"B" + struct.pack("<I", len(data)) + data


def global_p0(module: str, name: str, arg: str = "id") -> bytes:
    """Protocol 0: GLOBAL module\\nname\\n, MARK, STRING arg, TUPLE, REDUCE."""
    return f"c{module}\n{name}\n(S'{arg}'\ntR.".encode()


def inst_p0(module: str, name: str, arg: str = "id") -> bytes:
    """Protocol 0 INST: MARK args INST module\\nname\\n builds module.name(*args)."""
    return f"(S'{arg}'\ni{module}\n{name}\n.".encode()


def stack_global_p4(module: str, name: str, arg: str = "id") -> bytes:
    return (PROTO4 + sbu(module) + MEMOIZE + sbu(name) + MEMOIZE + STACK_GLOBAL + MEMOIZE
            + sbu(arg) + TUPLE1 + REDUCE + STOP)


def memo_overwrite_p4(module: str, name: str, arg: str = "id") -> bytes:
    """Memo slot 0 first holds a harmless module, then is overwritten by `module` before use:
    a scanner that remembers the first value per slot resolves the wrong global."""
    return (PROTO4 + sbu("collections") + MEMOIZE + POP
            + sbu(name) + MEMOIZE + POP
            + sbu(module) + binput(0) + POP
            + binget(0) + binget(1) + STACK_GLOBAL + sbu(arg) + TUPLE1 + REDUCE + STOP)


def nested_loads_p4(inner: bytes, loader: tuple[str, str] = ("pickle", "loads")) -> bytes:
    """An outer pickle that calls pickle.loads on an inner malicious pickle."""
    return (PROTO4 + sbu(loader[0]) + sbu(loader[1]) + STACK_GLOBAL + short_binbytes(inner)
            + TUPLE1 + REDUCE + STOP)


PickleBuilder = Callable[[str, str], bytes]
ENCODINGS: dict[str, PickleBuilder] = {
    "global_p0": global_p0,
    "inst_p0": inst_p0,
    "stack_global_p4": stack_global_p4,
    "memo_overwrite_p4": memo_overwrite_p4,
    "nested_loads": lambda m, n: nested_loads_p4(global_p0(m, n)),
    "nested_loads_p4_inner": lambda m, n: nested_loads_p4(stack_global_p4(m, n)),
}
DANGEROUS = [("os", "system"), ("posix", "system"), ("subprocess", "Popen"),
             ("builtins", "eval"), ("builtins", "exec"), ("runpy", "_run_code")]


def torch_zip(pickle_bytes: bytes, prefix: str = "archive") -> bytes:
    """A torch.save-shaped zip: <prefix>/data.pkl plus the version record."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", pickle_bytes)
        zf.writestr(f"{prefix}/version", "3\n")
        zf.writestr(f"{prefix}/byteorder", "little")
    return buf.getvalue()


# --- safetensors -------------------------------------------------------------------------------

def benign_safetensors() -> bytes:
    return safetensors_bytes(lora_tensors())


def _entry(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def hostile_safetensors() -> dict[str, bytes]:
    """Every malformation of the container format; each must be flagged AS2xx."""
    good = benign_safetensors()
    two = {"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 8, 16)}
    dup = (b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
           b'"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}')
    nan = np.array([np.nan, 1.0, np.inf, 2.0], dtype=np.float32).tobytes()
    return {
        "empty": b"",
        "truncated_prefix": b"\x10\x00\x00",
        "truncated_body": good[: len(good) // 2],
        "header_len_huge": struct.pack("<Q", 2**63 - 1) + b"{}",
        "header_len_past_eof": raw_safetensors(b'{"a":1}', header_len=4096),
        "header_len_over_cap": raw_safetensors(b"{}", header_len=200_000_000),
        "header_not_json": raw_safetensors(b"not json at all!"),
        "header_not_utf8": raw_safetensors(b'{"\xff\xfe":{}}    '),
        "header_json_list": raw_safetensors(b"[1, 2, 3]"),
        "header_json_string": raw_safetensors(b'"hello"'),
        "header_json_null": raw_safetensors(b"null"),
        "duplicate_keys": raw_safetensors(dup, b"\x00" * 16),
        "overlap": raw_safetensors({"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 4, 12)},
                                   b"\x00" * 12),
        "gap": raw_safetensors({"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 16, 24)},
                               b"\x00" * 24),
        "not_from_zero": raw_safetensors({"a": _entry("F32", [2], 8, 16)}, b"\x00" * 16),
        "past_data": raw_safetensors({"a": _entry("F32", [2], 0, 8)}, b"\x00" * 4),
        "size_mismatch": raw_safetensors({"a": _entry("F32", [3], 0, 8)}, b"\x00" * 8),
        "shape_overflow": raw_safetensors({"a": _entry("F32", [2**40, 2**40], 0, 8)},
                                          b"\x00" * 8),
        "negative_shape": raw_safetensors({"a": _entry("F32", [-2], 0, 8)}, b"\x00" * 8),
        "unknown_dtype": raw_safetensors({"a": _entry("X99", [2], 0, 8)}, b"\x00" * 8),
        "metadata_not_str": raw_safetensors({"__metadata__": {"k": 1}, **two}, b"\x00" * 16),
        "trailing_zip": good + torch_zip(global_p0("os", "system")),
        "trailing_bytes": good + b"\x00" * 7,
        "nan_inf_weights": raw_safetensors({"a": _entry("F32", [4], 0, 16)}, nan),
        "pickle_named_safetensors": global_p0("os", "system"),
        "zip_named_safetensors": torch_zip(global_p0("os", "system")),
    }


# --- folders -----------------------------------------------------------------------------------

def write_config(folder: Path, **overrides: object) -> None:
    (folder / "adapter_config.json").write_text(json.dumps(adapter_config(**overrides)))


def adapter_with(folder: Path, *, weights: bytes | None = None,
                 weights_name: str = "adapter_model.safetensors",
                 config: bytes | None = None) -> Path:
    """A folder with a config (default benign) and one weights file (default benign)."""
    folder.mkdir(parents=True, exist_ok=True)
    if config is None:
        write_config(folder)
    else:
        (folder / "adapter_config.json").write_bytes(config)
    (folder / weights_name).write_bytes(benign_safetensors() if weights is None else weights)
    return folder
