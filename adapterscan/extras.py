"""Optional dependencies (the extras in pyproject.toml): is one installed, and if not, say so.

Commands and library entry points check the extra they need before doing any work, so that a
missing package is one clear line naming the extra to install, never a ModuleNotFoundError from
deep inside a scan or a worker process. The check asks the import system whether each module
could be found (importlib.util.find_spec) and imports nothing: importing torch alone costs
seconds.
"""

from __future__ import annotations

import importlib.util

from adapterscan.errors import UsageError

# extra -> the top-level modules it provides (import names, not distribution names). Kept equal
# to pyproject.toml's [project.optional-dependencies] by tests/test_extras.py.
EXTRAS: dict[str, tuple[str, ...]] = {
    "probe": ("torch", "transformers", "peft", "tokenizers", "accelerate", "gguf"),
    "sign": ("sigstore",),
    "serve": ("fastapi", "uvicorn", "httpx"),
    "postgres": ("psycopg", "psycopg_pool"),  # on top of serve's, which it also installs
    "ray": ("ray",),
}


class MissingExtraError(UsageError):
    """What was asked for needs an optional dependency that is not installed."""

    def __init__(self, what: str, extra: str, missing: tuple[str, ...]) -> None:
        super().__init__(f"{what} needs the {extra} extra: pip install 'adapterscan[{extra}]' "
                         f"(not installed: {', '.join(missing)})")
        self.extra = extra
        self.missing = missing


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-removed package counts as missing
        return False


def missing_modules(extra: str) -> tuple[str, ...]:
    """The modules of `extra` that cannot be imported here (empty when it is installed)."""
    return tuple(m for m in EXTRAS[extra] if not _installed(m))


def require_extra(extra: str, what: str) -> None:
    """Raise MissingExtraError unless every module of `extra` is installed. `what` names the
    command or call that needs it ("adapterscan demo"); it starts the message."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(what, extra, missing)
