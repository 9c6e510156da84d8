"""The curated data-container allowlist (AS447 params) against the installed libraries.

A listed class must still exist where the list says, and must still be plain data on the path
AS447 accepts: no __setstate__, __new__, __reduce__(_ex__) or __setattr__ of its own anywhere in
its MRO (object's do nothing of the file's choosing); a listed enum must be an Enum.
"""

from __future__ import annotations

import enum
import importlib

from adapterscan.emit import Emitter
from adapterscan.static.pickle.ops import data_containers
from tests.static.factories_pickle import as4_ruleset

_HOOKS = ("__setstate__", "__new__", "__reduce__", "__reduce_ex__", "__setattr__")
_INSTALLED = ("transformers", "accelerate", "peft")  # dev dependencies; trl is checked by hand


def _resolve(qual: str) -> object | None:
    module, _, name = qual.rpartition(".")
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return getattr(mod, name, None)


def _installed(names: frozenset[str]) -> list[tuple[str, object | None]]:
    return [(q, _resolve(q)) for q in sorted(names) if q.startswith(_INSTALLED)]


def test_listed_classes_are_plain_data() -> None:
    checked = 0
    for qual, cls in _installed(data_containers(Emitter(as4_ruleset())).classes):
        assert isinstance(cls, type), f"{qual} no longer exists"
        assert f"{cls.__module__}.{cls.__qualname__}" == qual, "pickles name the defining module"
        own = [(c.__qualname__, h) for c in cls.__mro__ if c is not object
               for h in _HOOKS if h in vars(c)]
        assert not own, f"{qual} customises unpickling: {own}"
        checked += 1
    assert checked >= 12


def test_listed_enums_are_enums() -> None:
    checked = 0
    for qual, cls in _installed(data_containers(Emitter(as4_ruleset())).enums):
        if cls is None and qual.endswith("EvaluationStrategy"):
            continue  # renamed in transformers 4.x; old training_args.bin files still carry it
        assert isinstance(cls, type) and issubclass(cls, enum.Enum), qual
        assert "_missing_" not in vars(cls) or cls._missing_.__qualname__.endswith(
            "ExplicitEnum._missing_"), f"{qual} runs its own lookup code"
        checked += 1
    assert checked >= 18


def test_lists_do_not_overlap_the_denylist() -> None:
    from adapterscan.static.pickle.allowlist import Verdict, classify

    allow = data_containers(Emitter(as4_ruleset()))
    for qual in allow.classes | allow.enums:
        module, _, name = qual.rpartition(".")
        assert classify(module, name)[0] is Verdict.UNKNOWN, qual
