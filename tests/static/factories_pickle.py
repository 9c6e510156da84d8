"""Builders for AS4xx fixtures: hand-written pickle opcodes and doctored zip archives.

Malicious pickles are assembled from opcode bytes; nothing here pickles a real callable.
"""

from __future__ import annotations

import collections
import io
import shutil
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.fetch.local import LocalFetcher
from adapterscan.findings import Finding
from adapterscan.rules.loader import default_signatures_dir, load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.source import FetchLimits
from adapterscan.static.inventory.checks import CHECKS as INVENTORY_CHECKS
from adapterscan.static.inventory.inventory import build_inventory, pickle_only_weights
from adapterscan.static.limits import StaticLimits
from adapterscan.static.model import FileClass, Inventory
from adapterscan.static.pickle.checks import CHECKS as PICKLE_CHECKS
from adapterscan.static.pickle.ops import analyze_pickle_file


@lru_cache(maxsize=1)
def as4_ruleset() -> RuleSet:
    """Only the AS4xx rules, so these tests do not depend on other analyzers' progress."""
    src = default_signatures_dir()
    root = Path(tempfile.mkdtemp(prefix="as4rules-"))
    shutil.copytree(src / "schema", root / "schema")
    (root / "rules").mkdir()
    for path in sorted((src / "rules").glob("AS4*.toml")):
        shutil.copy(path, root / "rules" / path.name)
    return load_ruleset(root, checks=INVENTORY_CHECKS | PICKLE_CHECKS)


@dataclass(frozen=True)
class Result:
    findings: tuple[Finding, ...]
    skipped: tuple[str, ...]
    inventory: Inventory | None = None

    def ids(self) -> set[str]:
        return {f.rule_id for f in self.findings}

    def of(self, rule_id: str) -> list[Finding]:
        return [f for f in self.findings if f.rule_id == rule_id]

    def max_severity(self) -> str:
        order = ["info", "low", "medium", "high", "critical"]
        return max((f.severity.value for f in self.findings), key=order.index, default="info")


def scan_pickle(path: Path, limits: StaticLimits | None = None) -> Result:
    emit = Emitter(as4_ruleset())
    analyze_pickle_file(path, path.name, emit, limits or StaticLimits())
    assert emit.errors == ()
    return Result(emit.findings, tuple(s.path + ": " + s.reason for s in emit.skipped))


def scan_pickle_bytes(tmp: Path, data: bytes, name: str = "adapter_model.bin",
                      limits: StaticLimits | None = None) -> Result:
    path = tmp / name
    path.write_bytes(data)
    return scan_pickle(path, limits)


def scan_folder(folder: Path, limits: StaticLimits | None = None) -> Result:
    emit = Emitter(as4_ruleset())
    src = LocalFetcher(folder, FetchLimits()).fetch(emit)
    inv = build_inventory(src, emit, limits or StaticLimits())
    # As the static stage does: walk the pickles, then judge pickle-only weights (AS403/AS449).
    proven = {i.path for i in inv.of_class(FileClass.PICKLE, FileClass.ZIP)
              if analyze_pickle_file(folder / i.path, i.path, emit, limits or StaticLimits())}
    pickle_only_weights(inv, emit, proven)
    assert emit.errors == ()
    return Result(emit.findings, tuple(s.path for s in emit.skipped), inv)


# -- pickle opcodes -----------------------------------------------------------------------

def u(s: str) -> bytes:
    """SHORT_BINUNICODE."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def p4(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def call(module: str, name: str, *args: str, proto4: bool = True) -> bytes:
    """module.name(*args) with STACK_GLOBAL, not terminated."""
    body = u(module) + u(name) + b"\x93"
    body += b"(" + b"".join(u(a) for a in args) + b"t" + b"R"
    return body


def os_system_p0(cmd: str = "echo pwned") -> bytes:
    return f"cos\nsystem\n(S'{cmd}'\ntR.".encode()


def inst_p0() -> bytes:
    return b"(S'echo pwned'\nios\nsystem\n."


def memo_confusion() -> bytes:
    """Decoy strings memoised first, then the memo slots overwritten with os/system."""
    body = u("collections") + b"q\x00" + u("OrderedDict") + b"q\x01" + b"00"
    body += u("os") + b"q\x00" + u("system") + b"q\x01" + b"00"
    body += b"h\x00h\x01\x93" + b"(" + u("id") + b"tR"
    return p4(body)


def memoize_index_trick() -> bytes:
    """MEMOIZE stores at len(memo), not after the highest index: slot 1 ends up 'posix'."""
    body = u("builtins") + b"q\x05" + u("posix") + b"\x94" + b"0"  # memo {5: builtins, 1: posix}
    body += u("system") + b"\x94"  # memo[2] = system
    body += b"h\x01" + b"h\x02" + b"\x93" + b"(" + u("id") + b"tR"
    return p4(body)


def stack_global_computed() -> bytes:
    """STACK_GLOBAL whose module name is the result of a call: unresolvable statically."""
    body = call("string", "capwords", "os") + u("system") + b"\x93" + b"(" + u("id") + b"tR"
    return p4(body)


def nested_pickle_loads() -> bytes:
    inner = os_system_p0()
    return p4(u("pickle") + u("loads") + b"\x93" + binbytes(inner) + b"\x85R")


def nested_hidden_in_codecs() -> bytes:
    """The inner pickle is built by _codecs.encode(str, 'latin1') (protocol 2 style bytes)."""
    inner = b"\x80\x02" + b"cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    text = inner.decode("latin-1").encode("utf-8")
    body = b"c_codecs\nencode\n" + b"X" + struct.pack("<I", len(text)) + text
    body += b"X\x06\x00\x00\x00latin1" + b"\x86R"
    return b"\x80\x02" + body + b"."


def unknown_global() -> bytes:
    return p4(u("mypkg.hooks") + u("Thing") + b"\x93" + b")R")


def truncated_after_payload() -> bytes:
    return os_system_p0()[:-1] + b"\xff\xfe"


def many_opcodes(n: int) -> bytes:
    return p4(b"N0" * n + b"N")


def benign_torch_bytes() -> bytes:
    import torch

    torch.set_num_threads(1)
    sd = collections.OrderedDict(
        (f"base_model.model.layers.{i}.q_proj.lora_A.weight", torch.randn(4, 16))
        for i in range(3))
    sd["p"] = torch.nn.Parameter(torch.ones(2, dtype=torch.bfloat16))
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


# -- zip archives --------------------------------------------------------------------------

def torch_like_zip(members: dict[str, bytes], *, compress: int = zipfile.ZIP_STORED,
                   duplicate: str | None = None) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w", compress) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
            if duplicate is not None:
                zf.writestr(duplicate, members[duplicate])
    return buf.getvalue()


def malicious_archive(**kw: object) -> bytes:
    return torch_like_zip({"archive/data.pkl": os_system_p0(), "archive/version": b"3\n"},
                          **kw)  # type: ignore[arg-type]


def patch_headers(data: bytes, *, flag_or: int = 0, crc: int | None = None,
                  local_name: bytes | None = None) -> bytes:
    """Edit every local and central header: flag bits, CRC-32, or the local file name."""
    out = bytearray(data)
    pos = out.find(b"PK\x03\x04")
    while pos >= 0:
        flags = struct.unpack_from("<H", out, pos + 6)[0]
        struct.pack_into("<H", out, pos + 6, flags | flag_or)
        if crc is not None:
            struct.pack_into("<I", out, pos + 14, crc)
        if local_name is not None:
            n = struct.unpack_from("<H", out, pos + 26)[0]
            assert len(local_name) == n
            out[pos + 30:pos + 30 + n] = local_name
            local_name = None
        pos = out.find(b"PK\x03\x04", pos + 4)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        flags = struct.unpack_from("<H", out, pos + 8)[0]
        struct.pack_into("<H", out, pos + 8, flags | flag_or)
        if crc is not None:
            struct.pack_into("<I", out, pos + 16, crc)
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


SEVEN_Z = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(64)
