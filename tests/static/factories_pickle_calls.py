"""Pickles that call a global through every construction path, and the containers they hide in.

All built from opcode bytes: nothing here pickles (or could run) a real callable.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable

from tests.static.factories_pickle import u


def _g0(mod: str, name: str) -> bytes:
    return f"c{mod}\n{name}\n".encode()


def reduce_p0(mod: str, name: str) -> bytes:
    return _g0(mod, name) + b"(S'x'\ntR."


def reduce_stack_global(mod: str, name: str) -> bytes:
    return b"\x80\x04" + u(mod) + u(name) + b"\x93(" + u("x") + b"tR."


def newobj(mod: str, name: str) -> bytes:
    return b"\x80\x02" + _g0(mod, name) + b")\x81."


def newobj_ex(mod: str, name: str) -> bytes:
    return b"\x80\x04" + u(mod) + u(name) + b"\x93)}\x92."


def inst(mod: str, name: str) -> bytes:
    return f"(S'x'\ni{mod}\n{name}\n.".encode()


def obj(mod: str, name: str) -> bytes:
    return b"(" + _g0(mod, name) + b"S'x'\no."


def memo_indirection(mod: str, name: str) -> bytes:
    """The global is memoised and dropped, a decoy call runs, then the memo copy is called."""
    return (b"\x80\x02" + _g0(mod, name) + b"q\x000" + _g0("collections", "OrderedDict")
            + b")R0" + b"h\x00(S'x'\ntR.")


def passed_to_reconstructor(mod: str, name: str) -> bytes:
    """copyreg._reconstructor(cls, base, state) instantiates whatever class it is given."""
    return _g0("copyreg", "_reconstructor") + b"(" + _g0(mod, name) + _g0("builtins", "set") \
        + b"NtR."


def shared_list_to_rebuild(mod: str, name: str) -> bytes:
    """A list memoised empty, the global appended afterwards, the memo copy handed to
    torch._tensor._rebuild_from_type_v2(func, type, args, state), which calls its arguments."""
    return (b"\x80\x02]q\x000" + b"h\x00" + _g0(mod, name) + b"a0"
            + _g0("torch._tensor", "_rebuild_from_type_v2") + b"(h\x00NNNtR.")


def build_state(mod: str, name: str) -> bytes:
    """An allowlisted object whose BUILD state carries the global (__setstate__ receives it)."""
    return (b"\x80\x02" + _g0("collections", "OrderedDict") + b")R}" + u("k") + _g0(mod, name)
            + b"sb.")


def nested_bytes(mod: str, name: str) -> bytes:
    """The calling pickle only travels as a bytes value inside an innocent dict."""
    inner = reduce_p0(mod, name)
    return b"\x80\x04}" + u("blob") + b"B" + struct.pack("<I", len(inner)) + inner + b"s."


PATHS: dict[str, Callable[[str, str], bytes]] = {
    "reduce_p0": reduce_p0, "reduce_stack_global": reduce_stack_global, "newobj": newobj,
    "newobj_ex": newobj_ex, "inst": inst, "obj": obj, "memo": memo_indirection,
    "reconstructor_arg": passed_to_reconstructor, "shared_list": shared_list_to_rebuild,
    "build_state": build_state, "nested": nested_bytes,
}


# -- containers ----------------------------------------------------------------------------

def npy_object(pickle_bytes: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy object array as np.save writes it: header, then the pickle np.load unpickles."""
    return npy_raw("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", pickle_bytes,
                   version)


def npy_raw(header: str, data: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    pre = b"\x93NUMPY" + bytes(version)
    size = 10 if version == (1, 0) else 12
    text = header.encode("latin-1")
    pad = (-(size + len(text) + 1)) % 64
    text += b" " * pad + b"\n"
    length = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return pre + length + text + data


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    return buf.getvalue()


WRAPPERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "raw": ("adapter_model.bin", lambda p: p),
    "torch_zip": ("optimizer.pt", lambda p: zipped({"archive/data.pkl": p,
                                                     "archive/version": b"3\n"})),
    "npy": ("state.npy", npy_object),
    "npz": ("arrays.npz", lambda p: zipped({"ok.npy": npy_raw(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", b"\0" * 8),
        "obj.npy": npy_object(p)})),
}
