"""A symbolic pickle machine: walks opcodes with `pickletools.genops`, never unpickles.

It keeps the stack, the mark stack and the memo as abstract values, so a STACK_GLOBAL operand is
resolved exactly as the unpickler would resolve it (strings fetched from the memo, overwritten
memo slots, MEMOIZE indices), whatever decoys surround it. Values the machine cannot know (the
result of a call, a persistent id) make a STACK_GLOBAL unresolvable, which is reported as such.
"""

from __future__ import annotations

import pickletools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapterscan.static.pickle.allowlist import DataContainers, Verdict, classify

_MAX_LINE = 1 << 20
_BIG_ARG = 64 << 20  # arguments larger than this are skipped, not held in memory
_MAX_NAME = 4096  # longer strings are kept only as "some string" (unresolvable if imported)
_LATIN1 = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"})
CALL_OPS = frozenset({"REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"})
# Python >= 3.12 pickles an enum member by name: REDUCE(builtins.getattr, (EnumClass, "NAME")).
_GETATTR = "builtins.getattr"
# Member names of the allowlisted enums (all upper case; no dunder or private attribute).
_MEMBER_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


class LimitReached(Exception):
    pass


class _Big:
    """Stands in for an argument too large to hold; genops only asks for its length."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


class Reader:
    """A bounded stream for genops: read/readline/tell/peek over any object with read(n)."""

    def __init__(self, raw: Any, limit: int, *, hard: bool = False) -> None:
        self._raw = raw
        self._buf = bytearray()
        self.pos = 0
        # `limit` is the stream's end; with hard=True it is an analysis cap on a longer stream,
        # and reading past it is a limit rather than a truncated pickle.
        self.limit = limit
        self.hard = hard
        self.big_hit = False

    def _fill(self, n: int) -> None:
        while len(self._buf) < n:
            chunk = self._raw.read(max(n - len(self._buf), 65536))
            if not chunk:
                return
            self._buf += chunk

    def _take(self, n: int) -> bytes:
        if self.pos + n > self.limit:
            if self.hard:
                raise LimitReached(f"pickle stream longer than the {self.limit}-byte cap")
            n = self.limit - self.pos  # a short read: genops reports the truncation
        self._fill(n)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.pos += len(out)
        return out

    def read(self, n: int = -1) -> Any:
        if n < 0:
            n = self.limit - self.pos
        if n > _BIG_ARG:
            self.big_hit = True
            got = 0
            while got < n:
                part = len(self._take(min(1 << 20, n - got)))
                if part == 0:
                    break
                got += part
            return _Big(got)
        return self._take(n)

    def readline(self) -> bytes:
        start = 0
        while True:
            idx = self._buf.find(b"\n", start)
            if idx >= 0:
                return self._take(idx + 1)
            start = len(self._buf)
            if start >= _MAX_LINE:
                return self._take(start)
            before = len(self._buf)
            self._fill(before + 65536)
            if len(self._buf) == before:
                return self._take(before)

    def tell(self) -> int:
        return self.pos

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return bytes(self._buf[:n])


# Abstract values -------------------------------------------------------------------------

@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Raw:
    value: bytes


@dataclass(frozen=True)
class Glob:
    qual: str
    verdict: Verdict


@dataclass(frozen=True)
class Tup:
    items: tuple[object, ...]


@dataclass(frozen=True)
class Obj:
    """An instance of an allowlisted data container built through its real construction path:
    `cls.__new__(cls)` by NEWOBJ (then BUILD with a plain dict), or an enum member by value."""

    qual: str
    enum: bool


class Box:
    """A list, dict or set. Mutable on purpose: the memo shares it, so a global appended after
    the box was memoised is still reachable from every copy of it."""

    __slots__ = ("kind", "refs")

    def __init__(self, kind: str, items: list[object] | tuple[object, ...] = ()) -> None:
        self.kind = kind
        self.refs: list[object] = []
        self.add(items)

    def add(self, items: list[object] | tuple[object, ...]) -> None:
        # Only values that can lead to a global are kept; constants and strings are dropped.
        self.refs.extend(v for v in items if isinstance(v, Glob | Box | Tup))


@dataclass(frozen=True)
class Opaque:
    """A value whose runtime content is unknown (call results, persistent ids) or irrelevant."""

    kind: str
    may_be_str: bool = False


_CONST = Opaque("const")


@dataclass(frozen=True)
class Event:
    kind: str  # global | call | container | unresolved | conditional | nested | malformed | limit
    where: str
    detail: str
    qual: str = ""
    verdict: Verdict | None = None


@dataclass
class Walk:
    """What one pickle showed: events in order, opcode counts, and whether it reached STOP."""

    events: list[Event] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    protocol: int = 0
    complete: bool = False
    error: str | None = None
    globals_seen: int = 0


class Budget:
    """Shared across one file: total opcodes and nesting depth."""

    def __init__(self, max_opcodes: int, max_memo: int, max_nesting: int) -> None:
        self.max_opcodes = max_opcodes
        self.max_memo = max_memo
        self.max_nesting = max_nesting
        self.opcodes = 0


Nested = Callable[[bytes, str, int], "Walk | None"]


class _Semantic(Exception):
    """The unpickler itself would stop here (stack underflow, missing mark, memo miss...)."""


def looks_nested(data: bytes) -> bool:
    if len(data) >= 3 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    return len(data) >= 6 and data[:1] in (b"c", b"(", b"]", b"}", b"i") and b"\n" in data[:512]


class Machine:
    def __init__(self, where: str, budget: Budget, depth: int, nested: Nested | None,
                 containers: DataContainers | None = None) -> None:
        self.where = where
        self.budget = budget
        self.depth = depth
        self.nested = nested
        self.containers = containers
        self.stack: list[object] = []
        self.meta: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.walk = Walk()
        # builtins.getattr imported while data containers are modelled: judged at the end of
        # the walk (by object id), dangerous unless its only use was the enum-by-name pattern.
        self._getattrs: dict[int, tuple[Glob, int | None]] = {}
        self._getattr_ok: set[int] = set()
        self._getattr_misused: set[int] = set()

    # -- stack helpers
    def _pop(self) -> object:
        if not self.stack:
            raise _Semantic("stack underflow")
        return self.stack.pop()

    def _pop_mark(self) -> list[object]:
        if not self.meta:
            raise _Semantic("MARK expected")
        items = self.stack
        self.stack = self.meta.pop()
        return items

    def _push(self, v: object) -> None:
        self.stack.append(v)
        if len(self.stack) + len(self.meta) > self.budget.max_memo:
            raise LimitReached(f"stack deeper than {self.budget.max_memo}")

    def _event(self, kind: str, pos: int | None, detail: str, qual: str = "",
               verdict: Verdict | None = None) -> None:
        self.walk.events.append(Event(kind, f"{self.where}@{pos}", detail, qual, verdict))

    def _global(self, module: str, name: str, pos: int | None) -> Glob:
        verdict, qual = classify(module, name, self.walk.protocol)
        self.walk.globals_seen += 1
        glob = Glob(qual, verdict)
        if qual == _GETATTR and self.containers is not None:
            self._getattrs[id(glob)] = (glob, pos)  # reported in _judge_getattrs
        else:
            self._event("global", pos, "", qual, verdict)
        return glob

    def _enum_by_name(self, callee: Glob, args: object, op: str, pos: int | None) -> Obj | None:
        """`getattr(EnumClass, "NAME")` for an allowlisted enum: a member looked up by name."""
        c = self.containers
        if id(callee) not in self._getattrs or c is None:
            return None
        if (op == "REDUCE" and isinstance(args, Tup) and len(args.items) == 2
                and isinstance(args.items[0], Glob) and args.items[0].qual in c.enums
                and isinstance(args.items[1], Str)
                and _MEMBER_NAME.fullmatch(args.items[1].value)):
            self._getattr_ok.add(id(callee))
            self._event("container", pos, "enum by name", args.items[0].qual,
                        args.items[0].verdict)
            return Obj(args.items[0].qual, enum=True)
        self._getattr_misused.add(id(callee))
        return None

    def _judge_getattrs(self) -> None:
        for key, (glob, pos) in self._getattrs.items():
            if key in self._getattr_misused or key not in self._getattr_ok:
                self._event("global", pos, "", glob.qual, glob.verdict)

    def _text(self, value: object, pos: int | None) -> object:
        data: bytes | None = None
        if isinstance(value, str):
            try:
                data = value.encode("latin-1")
            except UnicodeEncodeError:
                data = None
            out: object = Str(value)
        elif isinstance(value, bytes | bytearray):
            data = bytes(value)
            out = Raw(data)
        else:
            return Opaque("large")
        if data is not None and self.nested is not None and looks_nested(data):
            self._nested(data, pos)
        # Only short strings can name a module; keep nothing else in memory.
        if isinstance(out, Str) and len(out.value) <= _MAX_NAME:
            return out
        return Opaque("data", may_be_str=isinstance(out, Str))

    def _nested(self, data: bytes, pos: int | None) -> None:
        assert self.nested is not None
        if self.depth + 1 > self.budget.max_nesting:
            self._event("limit", pos, f"nested pickle deeper than {self.budget.max_nesting}")
            return
        inner = self.nested(data, f"{self.where}@{pos}>nested", self.depth + 1)
        if inner is not None:
            self._event("nested", pos, f"{len(data)} bytes, protocol {inner.protocol}, "
                        f"{'complete' if inner.complete else 'truncated'}")
            self.walk.events.extend(inner.events)
            self.walk.ops.update(inner.ops)

    def _call(self, callee: object, args: object, op: str, pos: int | None) -> object:
        """What a call opcode does. A callable outside the allowlist that is called, or handed
        as an argument or BUILD state to code that runs at load, is code execution."""
        result: object = Opaque("object", may_be_str=True)
        if isinstance(callee, Glob):
            member = self._enum_by_name(callee, args, op, pos)
            if member is not None:
                return member
            if callee.verdict is Verdict.CONDITIONAL:
                result = self._conditional(callee, args, pos)
            elif callee.verdict is Verdict.UNKNOWN:
                result = self._call_unknown(callee, args, op, pos)
        elif isinstance(callee, Obj) and op == "BUILD":
            self._build_container(callee, args, pos)
        elif op != "BUILD":
            self._event("unresolved", pos, f"{op} calls a value that is not a resolved global "
                        f"({type(callee).__name__.lower()}), its target is decided at load time")
        target = callee.qual if isinstance(callee, Glob | Obj) else type(callee).__name__.lower()
        for g in self._reachable_globals(args):
            if g.verdict is Verdict.UNKNOWN:
                self._event("call", pos, f"passed to {target} by {op}", g.qual, g.verdict)
            elif g.verdict is Verdict.CONDITIONAL:
                self._event("conditional", pos, f"{g.qual} passed as an argument to "
                            "another call", g.qual, g.verdict)
        return result

    def _call_unknown(self, callee: Glob, args: object, op: str, pos: int | None) -> object:
        c = self.containers
        if c is not None and isinstance(args, Tup):
            if op == "NEWOBJ" and not args.items and callee.qual in c.classes:
                self._event("container", pos, "NEWOBJ", callee.qual, callee.verdict)
                return Obj(callee.qual, enum=False)
            if (op == "REDUCE" and callee.qual in c.enums and len(args.items) == 1
                    and _plain(args.items[0])):
                self._event("container", pos, "enum by value", callee.qual, callee.verdict)
                return Obj(callee.qual, enum=True)
        detail = op
        if c is not None and callee.qual in c.classes | c.enums:
            detail = f"{op}, not the data container's construction path"
        self._event("call", pos, detail, callee.qual, callee.verdict)
        return Opaque("object", may_be_str=True)

    def _build_container(self, obj: Obj, args: object, pos: int | None) -> None:
        state = args.items[0] if isinstance(args, Tup) and args.items else None
        if obj.enum or not (isinstance(state, Box) and state.kind == "dict"):
            # Anything but a plain dict goes through __setstate__ or setattr: not data.
            self._event("call", pos, f"BUILD with {'an enum' if obj.enum else 'non-dict state'}"
                        " on a data container", obj.qual, Verdict.UNKNOWN)

    def _reachable_globals(self, root: object) -> list[Glob]:
        """Every global reachable from a value through tuples and containers (bounded)."""
        found: list[Glob] = []
        seen: set[int] = set()
        todo = [root]
        while todo:
            v = todo.pop()
            if isinstance(v, Glob):
                found.append(v)
                if id(v) in self._getattrs:  # getattr handed to other code: not the pattern
                    self._getattr_misused.add(id(v))
            elif isinstance(v, Tup | Box) and id(v) not in seen:
                seen.add(id(v))
                self.budget.opcodes += 1
                if self.budget.opcodes > self.budget.max_opcodes:
                    raise LimitReached(f"more than {self.budget.max_opcodes} steps")
                todo.extend(v.items if isinstance(v, Tup) else v.refs)
        return found

    def _conditional(self, callee: Glob, args: object, pos: int | None) -> object:
        if (callee.qual == "_codecs.encode" and isinstance(args, Tup) and len(args.items) == 2
                and isinstance(args.items[0], Str) and isinstance(args.items[1], Str)
                and args.items[1].value.lower() in _LATIN1):
            try:
                data = args.items[0].value.encode("latin-1")
            except UnicodeEncodeError:
                return Opaque("bytes")
            # The produced bytes may themselves be a pickle fed to a later loads().
            if self.nested is not None and looks_nested(data):
                self._nested(data, pos)
            return Raw(data)
        self._event("conditional", pos, f"{callee.qual} called with arguments other than "
                    "(str, 'latin1')", callee.qual, callee.verdict)
        return Opaque("object", may_be_str=True)

    # -- main loop
    def run(self, reader: Reader) -> Walk:
        w = self.walk
        pos: int | None = None
        try:
            for opcode, arg, pos in pickletools.genops(reader):  # type: ignore[arg-type]
                self.budget.opcodes += 1
                if self.budget.opcodes > self.budget.max_opcodes:
                    raise LimitReached(f"more than {self.budget.max_opcodes} opcodes")
                w.ops[opcode.name] += 1
                self._step(opcode.name, arg, pos)
                if opcode.name == "STOP":
                    w.complete = True
        except LimitReached as exc:
            self._event("limit", pos, str(exc))
        except _Semantic as exc:
            w.error = str(exc)
            self._event("malformed", pos, f"the unpickler stops here: {exc}")
        except (AttributeError, TypeError) as exc:
            if reader.big_hit:
                self._event("limit", pos, f"argument larger than {_BIG_ARG} bytes")
            else:
                w.error = f"{type(exc).__name__}: {exc}"
                self._event("malformed", pos, w.error)
        except Exception as exc:  # genops raises ValueError and friends on bad bytes
            w.error = f"{type(exc).__name__}: {exc}"
            self._event("malformed", reader.tell(), w.error)
        self._judge_getattrs()
        return w

    def _step(self, name: str, arg: Any, pos: int | None) -> None:
        if name in ("PROTO",):
            self.walk.protocol = int(arg)
        elif name in ("FRAME", "STOP"):
            if name == "STOP":
                self._pop()
        elif name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT",
                      "BINFLOAT", "NONE", "NEWTRUE", "NEWFALSE"):
            self._push(_CONST)
        elif name in ("STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
                      "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES",
                      "BINBYTES8", "BYTEARRAY8"):
            self._push(self._text(arg, pos))
        elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"):
            self._push(Box(name.removeprefix("EMPTY_").lower()))
        elif name == "EMPTY_TUPLE":
            self._push(Tup(()))
        elif name == "MARK":
            self.meta.append(self.stack)
            self.stack = []
        elif name == "POP":
            if self.stack:
                self.stack.pop()
            else:
                self._pop_mark()
        elif name == "POP_MARK":
            self._pop_mark()
        elif name == "DUP":
            self._push(self.stack[-1] if self.stack else self._pop())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self._pop() for _ in range(n)][::-1]
            self._push(Tup(tuple(items)))
        elif name == "TUPLE":
            self._push(Tup(tuple(self._pop_mark())))
        elif name in ("LIST", "DICT", "FROZENSET"):
            self._push(Box(name.lower(), self._pop_mark()))
        elif name == "APPEND":
            self._add_to_top([self._pop()])
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            self._add_to_top(self._pop_mark())
        elif name == "SETITEM":
            value = self._pop()
            self._add_to_top([self._pop(), value])
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg) not in self.memo:
                raise _Semantic(f"memo key {arg} not found")
            self._push(self.memo[int(arg)])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self._memo_put(int(arg))
        elif name == "MEMOIZE":
            self._memo_put(len(self.memo))
        elif name == "GLOBAL":
            module, _, gname = str(arg).partition(" ")
            self._push(self._global(module, gname, pos))
        elif name == "STACK_GLOBAL":
            gname_v = self._pop()
            module_v = self._pop()
            self._push(self._stack_global(module_v, gname_v, pos))
        elif name == "INST":
            module, _, gname = str(arg).partition(" ")
            inst_cls = self._global(module, gname, pos)
            self._push(self._call(inst_cls, Tup(tuple(self._pop_mark())), name, pos))
        elif name == "OBJ":
            items = self._pop_mark()
            if not items:
                raise _Semantic("OBJ without a class")
            self._push(self._call(items[0], Tup(tuple(items[1:])), name, pos))
        elif name in ("NEWOBJ", "NEWOBJ_EX", "REDUCE"):
            kwargs = self._pop() if name == "NEWOBJ_EX" else None
            call_args = self._pop()
            callee = self._pop()
            if kwargs is not None:
                call_args = Tup((call_args, kwargs))
            self._push(self._call(callee, call_args, name, pos))
        elif name == "BUILD":
            state = self._pop()
            target = self._top()
            if isinstance(target, Glob):
                # BUILD on an imported class or function sets its attributes: a gadget that
                # rewires allowlisted code (the weights_only bypasses used it).
                self._event("global", pos, "BUILD", f"{target.qual} (attributes overwritten "
                            "by BUILD)", Verdict.DANGEROUS)
            self._call(target, Tup((state,)), name, pos)
        elif name in ("PERSID", "BINPERSID"):
            if name == "BINPERSID":
                self._pop()
            self._push(Opaque("persistent", may_be_str=True))
        elif name in ("EXT1", "EXT2", "EXT4"):
            self._event("unresolved", pos, f"{name} {arg}: a global taken from the copyreg "
                        "extension registry, decided by the loading process")
            self._push(Opaque("extension", may_be_str=True))
        elif name in ("NEXT_BUFFER",):
            self._push(Opaque("buffer"))
        elif name == "READONLY_BUFFER":
            self._top()
        else:
            raise _Semantic(f"opcode {name} not modelled")

    def _top(self) -> object:
        if not self.stack:
            raise _Semantic("stack underflow")
        return self.stack[-1]

    def _add_to_top(self, items: list[object]) -> None:
        # On anything but a list/dict/set these opcodes call its append/extend/__setitem__;
        # such objects come from a call that was judged when it was made.
        target = self._top()
        if isinstance(target, Box):
            target.add(items)

    def _memo_put(self, idx: int) -> None:
        if not self.stack:
            raise _Semantic("memo put on an empty stack")
        self.memo[idx] = self.stack[-1]
        if len(self.memo) > self.budget.max_memo:
            raise LimitReached(f"memo larger than {self.budget.max_memo} entries")

    def _stack_global(self, module: object, gname: object, pos: int | None) -> object:
        if isinstance(module, Str) and isinstance(gname, Str):
            return self._global(module.value, gname.value, pos)
        unknown = [v for v in (module, gname) if not isinstance(v, Str)]
        if all(isinstance(v, Glob | Obj) or (isinstance(v, Opaque) and v.may_be_str)
               for v in unknown):
            self.walk.globals_seen += 1
            shown = ", ".join(v.qual if isinstance(v, Glob | Obj) else getattr(v, "kind", "?")
                              for v in unknown)
            self._event("unresolved", pos, f"STACK_GLOBAL operand(s) computed at load time "
                        f"({shown}); the imported callable cannot be known statically")
            return Opaque("global", may_be_str=True)
        raise _Semantic("STACK_GLOBAL requires str operands")


def _plain(v: object) -> bool:
    return isinstance(v, Str | Raw) or (isinstance(v, Opaque) and v.kind == "const")


def walk_one(reader: Reader, where: str, budget: Budget, depth: int,
             nested: Nested | None, containers: DataContainers | None = None) -> Walk:
    return Machine(where, budget, depth, nested, containers).run(reader)
