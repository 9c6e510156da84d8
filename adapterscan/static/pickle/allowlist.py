"""Which pickle globals are known-safe, known-dangerous, or unknown (allowlist first).

A global is judged by its exact, normalised `module.name`. Only exact entries are safe: a dotted
name under a safe module (`collections` + `OrderedDict.__init__.__globals__`) is not. Everything
not on the allowlist is at least suspicious; the denylist only raises the severity.
"""

from __future__ import annotations

import _compat_pickle
import enum
import re
from dataclasses import dataclass

_TORCH_DTYPES = (
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "complex64",
    "complex128", "cfloat", "cdouble", "uint8", "int8", "int16", "short", "int32", "int",
    "int64", "long", "bool", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
    "float8_e5m2fnuz", "uint16", "uint32", "uint64", "qint8", "quint8", "qint32",
)
_TORCH_STORAGES = (
    "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage",
    "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
    "ComplexFloatStorage", "ComplexDoubleStorage", "QInt8Storage", "QUInt8Storage",
    "QInt32Storage", "Float8_e4m3fnStorage", "Float8_e5m2Storage", "UntypedStorage",
)
_TORCH_REBUILD = (
    "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
    "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
    "_rebuild_meta_tensor_no_storage", "_rebuild_nested_tensor",
)

SAFE: frozenset[str] = frozenset({
    *(f"torch._utils.{n}" for n in _TORCH_REBUILD),
    *(f"torch.{n}" for n in _TORCH_STORAGES),
    *(f"torch.{n}" for n in _TORCH_DTYPES),
    "torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.Size", "torch.Tensor",
    "torch.device", "torch.nn.parameter.Parameter", "torch.serialization._get_layout",
    "torch._tensor._rebuild_from_type_v2", "torch.per_tensor_affine", "torch.strided",
    "torch.sparse_coo",
    "collections.OrderedDict",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "numpy.ndarray", "numpy.dtype",
    "copyreg._reconstructor",
    "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.slice",
    "builtins.complex",
})

# Safe only with particular arguments; the analyzer checks the arguments it can resolve.
# _codecs.encode(str, "latin1") is how protocol 2 stores bytes (numpy arrays in torch.save).
CONDITIONAL: frozenset[str] = frozenset({"_codecs.encode"})

_DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "sys", "runpy", "importlib", "pickle", "_pickle",
    "cPickle", "dill", "cloudpickle", "joblib", "marshal", "types", "socket", "shutil", "code",
    "codeop", "pty", "asyncio", "webbrowser", "ctypes", "multiprocessing", "signal", "pdb",
    "bdb", "timeit", "trace", "profile", "cProfile", "pydoc", "tempfile", "glob", "zipimport",
    "pkgutil", "_io", "io", "fcntl", "resource", "urllib", "http", "ftplib", "smtplib",
    "telnetlib", "requests", "httpx", "aiohttp", "paramiko", "torch.hub", "torch.jit",
    "torch.serialization", "torch.package", "torch.utils.cpp_extension", "torch._dynamo",
    "torch._inductor", "numpy.f2py", "numpy.testing", "numpy.distutils", "distutils",
    "setuptools", "pip", "_posixsubprocess", "_winapi", "msvcrt", "winreg", "gc", "inspect",
    "threading", "_thread", "concurrent", "sqlite3", "pathlib", "builtins.__import__",
    # Importing these runs code (a GUI, a browser, a CLI) even when nothing is called.
    "idlelib", "antigravity", "this", "turtle", "turtledemo", "tkinter", "ensurepip", "venv",
    "lib2to3", "xmlrpc", "logging.config", "logging.handlers", "unittest", "doctest", "cgi",
    "cgitb", "wsgiref", "smtpd", "imaplib", "poplib", "nntplib", "mailbox", "shelve", "dbm",
    "zipapp", "compileall", "py_compile", "sysconfig", "site", "builtins.print",
})
_DANGEROUS_NAMES = frozenset({
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.getattr",
    "builtins.setattr", "builtins.delattr", "builtins.__import__", "builtins.open",
    "builtins.globals", "builtins.locals", "builtins.vars", "builtins.breakpoint",
    "builtins.input", "builtins.help", "builtins.exit", "builtins.quit", "builtins.memoryview",
    "builtins.type", "builtins.object", "builtins.super", "builtins.classmethod",
    "builtins.staticmethod", "builtins.property", "builtins.map", "builtins.filter",
    "builtins.apply", "builtins.execfile", "builtins.file", "builtins.reload",
    "functools.partial", "functools.reduce", "functools.partialmethod",
    "operator.attrgetter", "operator.methodcaller", "operator.itemgetter", "operator.getitem",
    "operator.call",
    "torch.load", "torch.storage._load_from_bytes", "torch._C._load_from_bytes",
    "torch.from_file", "torch.save", "torch.compile", "torch.classes", "torch.ops",
    "torch._ops", "torch.fx",
    "numpy.load", "numpy.fromfile", "numpy.save", "numpy.lib.npyio", "numpy.ctypeslib",
    "pandas.read_pickle", "pandas.io.pickle", "copyreg._extension_registry",
    "copyreg.add_extension", "collections.defaultdict.__getattribute__",
    "codecs.open", "_codecs.lookup", "codecs.lookup", "codecs.getreader",
    "linecache.getline", "linecache.updatecache", "zipfile.ZipFile", "tarfile.open",
})
_DUNDER = re.compile(r"__\w+__")


@dataclass(frozen=True)
class DataContainers:
    """Classes a pickle may instantiate as plain data (AS447): `training_args.bin` and friends.

    A class is data only on its real construction path: NEWOBJ with no arguments (which runs
    `object.__new__`), then BUILD with a dict (which updates `__dict__` when the class has no
    `__setstate__`); an enum by value (REDUCE with one constant) or by name
    (REDUCE of builtins.getattr with the class and an upper-case identifier). Every other call of
    them is a call like any other.
    """

    classes: frozenset[str]
    enums: frozenset[str]
    version: str


class Verdict(enum.Enum):
    SAFE = "safe"
    CONDITIONAL = "conditional"
    UNKNOWN = "unknown"
    DANGEROUS = "dangerous"


def normalize(module: str, name: str, protocol: int) -> str:
    """`module.name` as the unpickler resolves it (protocol < 3 maps Python 2 names)."""
    if protocol < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def classify(module: str, name: str, protocol: int = 4) -> tuple[Verdict, str]:
    """Judge one global; returns the verdict and its normalised qualified name."""
    qual = normalize(module, name, protocol)
    if qual in SAFE:
        return Verdict.SAFE, qual
    if qual in CONDITIONAL:
        return Verdict.CONDITIONAL, qual
    # Dunder attribute paths (`__globals__`, `__subclasses__`) only serve sandbox escapes.
    # A class defined in the loading script (`__main__.Config`) is unknown, not an escape.
    if _DUNDER.search(qual.removeprefix("__main__.")):
        return Verdict.DANGEROUS, qual
    for prefix in _prefixes(qual):
        if prefix in _DANGEROUS_NAMES or prefix in _DANGEROUS_MODULES:
            return Verdict.DANGEROUS, qual
    return Verdict.UNKNOWN, qual


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
