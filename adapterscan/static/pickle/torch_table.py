"""The tensor table of a torch archive's data.pkl, read by walking its opcodes (never unpickled).

`torch.save` of a state dict writes one pattern: a dict (or `collections.OrderedDict()`) whose
values are `torch._utils._rebuild_tensor_v2(persistent_id(('storage', torch.<T>Storage, key,
location, numel)), offset, size, stride, requires_grad, OrderedDict())`. This walker evaluates
exactly that pattern over plain values (ints, strings, tuples, markers for the two callables and
the storage types) and refuses every other opcode, callable or shape of data with a named
reason. Nothing here is called or imported: the markers are data. Whether the file is safe to
load is judged by the full opcode walk (ops.py); this module only reads what the pattern says.
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass, replace

_ORDERED_DICT = "collections.OrderedDict"
_REBUILD = "torch._utils._rebuild_tensor_v2"
_PARAMETER = "torch._utils._rebuild_parameter"  # nn.Parameter(tensor, requires_grad, hooks)
_MAX_NAME = 4096
_MAX_DIMS = 8
_MAX_INT = 1 << 62
_OPS = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "GLOBAL", "STACK_GLOBAL", "BINPUT", "LONG_BINPUT", "PUT",
    "MEMOIZE", "BINGET", "LONG_BINGET", "GET", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2",
    "TUPLE3", "EMPTY_DICT", "SETITEM", "SETITEMS", "BININT", "BININT1", "BININT2", "LONG1",
    "NEWFALSE", "NEWTRUE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINPERSID", "REDUCE",
})


class TableError(Exception):
    """The pickle is not torch's tensor-dict pattern: the reason is reported, nothing guessed."""


@dataclass(frozen=True)
class Storage:
    type_name: str  # the storage class's qualified name, e.g. torch.FloatStorage
    key: str  # member `<archive>/data/<key>`
    location: str
    numel: int  # elements of the storage's dtype


@dataclass(frozen=True)
class PickledTensor:
    name: str  # "" until the dict entry that holds it names it
    storage: Storage
    offset: int  # in elements
    size: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True)
class _Global:
    qual: str


class _Dict:
    """A dict being filled by SETITEM(S); the memo shares it, as the unpickler's memo does."""

    def __init__(self) -> None:
        self.items: list[tuple[object, object]] = []


_MARK = object()


def read_table(data: bytes, max_opcodes: int, max_tensors: int) -> list[PickledTensor]:
    """The tensors of one data.pkl, in pickle order; TableError for anything else."""
    stack: list[object] = []
    memo: dict[int, object] = {}
    done = False
    try:
        for count, (op, arg, pos) in enumerate(pickletools.genops(io.BytesIO(data)), 1):
            if count > max_opcodes:
                raise TableError(f"more than {max_opcodes} opcodes")
            if op.name not in _OPS:
                raise TableError(f"opcode {op.name} at {pos} is outside torch's tensor-dict "
                                 "pattern")
            done = _step(op.name, arg, stack, memo, max_tensors)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        # genops raises ValueError on bad bytes; the rest are a stack or memo the unpickler
        # itself would refuse.
        raise TableError(f"malformed pickle: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not done:  # genops raises first; kept so that no path returns a partial table
        raise TableError("pickle ends before STOP")
    return _tensors(stack[0] if len(stack) == 1 else None)


def _step(name: str, arg: object, stack: list[object], memo: dict[int, object],
          max_tensors: int) -> bool:
    if name in ("PROTO", "FRAME"):
        return False
    if name == "STOP":
        return True
    if name == "MARK":
        stack.append(_MARK)
    elif name == "GLOBAL":
        module, _, attr = str(arg).partition(" ")
        stack.append(_Global(f"{module}.{attr}"))
    elif name == "STACK_GLOBAL":
        attr_v, module_v = stack.pop(), stack.pop()
        if not (isinstance(module_v, str) and isinstance(attr_v, str)):
            raise TableError("STACK_GLOBAL with operands that are not strings")
        stack.append(_Global(f"{module_v}.{attr_v}"))
    elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
        memo[len(memo) if name == "MEMOIZE" else int(str(arg))] = stack[-1]
        if len(memo) > 16 * max_tensors + 64:
            raise TableError("memo larger than the tensor pattern needs")
    elif name in ("BINGET", "LONG_BINGET", "GET"):
        stack.append(memo[int(str(arg))])
    elif name == "EMPTY_TUPLE":
        stack.append(())
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        n = int(name[-1])
        items = tuple(stack[-n:])
        if len(items) != n or _MARK in items:
            raise TableError(f"{name} on a short stack")
        del stack[-n:]
        stack.append(items)
    elif name == "TUPLE":
        stack.append(tuple(_pop_mark(stack)))
    elif name == "EMPTY_DICT":
        stack.append(_Dict())
    elif name in ("SETITEM", "SETITEMS"):
        pairs = _pop_mark(stack) if name == "SETITEMS" else [stack.pop(-2), stack.pop()]
        target = stack[-1]
        if not isinstance(target, _Dict) or len(pairs) % 2:
            raise TableError(f"{name} on something that is not a dict")
        target.items.extend(zip(pairs[::2], pairs[1::2], strict=True))
        if len(target.items) > max_tensors:
            raise TableError(f"more than {max_tensors} entries")
    elif name in ("BININT", "BININT1", "BININT2", "LONG1"):
        if not isinstance(arg, int) or abs(arg) > _MAX_INT:
            raise TableError("integer out of range")
        stack.append(arg)
    elif name in ("NEWFALSE", "NEWTRUE"):
        stack.append(name == "NEWTRUE")
    elif name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"):
        if not isinstance(arg, str) or len(arg) > _MAX_NAME:
            raise TableError(f"string longer than {_MAX_NAME} characters")
        stack.append(arg)
    elif name == "BINPERSID":
        stack.append(_storage(stack.pop()))
    elif name == "REDUCE":
        args = stack.pop()
        stack.append(_reduce(stack.pop(), args))
    return False


def _pop_mark(stack: list[object]) -> list[object]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1:]
            del stack[i:]
            return items
    raise TableError("MARK expected")


def _storage(pid: object) -> Storage:
    """torch's persistent id for a storage: ('storage', <type>, key, location, numel)."""
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
        raise TableError("persistent id is not ('storage', type, key, location, numel)")
    _, cls, key, location, numel = pid
    if not (isinstance(cls, _Global) and isinstance(key, str) and isinstance(location, str)
            and _is_int(numel)):
        raise TableError("storage persistent id has fields of the wrong types")
    assert isinstance(numel, int)
    if numel < 0:
        raise TableError(f"storage {key!r} has a negative size")
    return Storage(cls.qual, key, location, numel)


def _reduce(callee: object, args: object) -> object:
    if not isinstance(callee, _Global) or not isinstance(args, tuple):
        raise TableError("REDUCE of something other than a named callable")
    if callee.qual == _ORDERED_DICT and args == ():
        return _Dict()
    if callee.qual == _PARAMETER:
        if len(args) == 3 and isinstance(args[0], PickledTensor) and isinstance(args[1], bool) \
                and isinstance(args[2], _Dict) and not args[2].items:
            return args[0]
        raise TableError(f"{_PARAMETER} with arguments other than (tensor, bool, no hooks)")
    if callee.qual != _REBUILD:
        raise TableError(f"callable {callee.qual[:200]} is not part of torch's tensor pattern")
    # (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if len(args) not in (6, 7):
        raise TableError(f"{_REBUILD} with {len(args)} arguments")
    storage, offset, size, stride, grad = args[:5]
    if not (isinstance(storage, Storage) and _is_int(offset) and _ints(size) and _ints(stride)
            and isinstance(grad, bool)):
        raise TableError(f"{_REBUILD} arguments of the wrong types")
    if any(not (isinstance(a, _Dict) and not a.items) for a in args[5:]):
        # Backward hooks or tensor metadata: not a plain tensor.
        raise TableError(f"{_REBUILD} with backward hooks or metadata")
    assert isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
    if len(size) > _MAX_DIMS or len(stride) != len(size):
        raise TableError(f"size {list(size)[:10]} and stride {list(stride)[:10]} do not match")
    return PickledTensor("", storage, offset, size, stride)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ints(v: object) -> bool:
    return isinstance(v, tuple) and all(_is_int(x) for x in v)


def _tensors(top: object) -> list[PickledTensor]:
    if not isinstance(top, _Dict):
        raise TableError("the pickle is not a dict of tensors")
    out: list[PickledTensor] = []
    seen: set[str] = set()
    for key, value in top.items:
        if not isinstance(key, str) or not isinstance(value, PickledTensor):
            raise TableError(f"entry {str(key)[:100]!r} is not a name mapped to a tensor")
        if key in seen:  # the unpickler keeps the last: two readers could disagree
            raise TableError(f"tensor name {key[:100]!r} appears twice")
        seen.add(key)
        out.append(replace(value, name=key))
    return out
