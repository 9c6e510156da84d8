"""AS446: a callable outside the allowlist that a pickle calls fails the scan, whatever its name,
construction path or container. AS447: known data containers on their real path do not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapterscan.findings import Severity
from adapterscan.policy.policy import Policy
from adapterscan.report import Decision
from adapterscan.static.pickle.allowlist import SAFE
from tests.static import factories_pickle as fp
from tests.static import factories_pickle_calls as fc

_THIRD_PARTY = ["transformers.utils.hub", "accelerate.utils", "peft.utils", "requests.api",
                "yaml", "jinja2", "numpy.lib", "scipy.io", "sklearn.utils", "pandas.io.sql",
                "torch.utils.data", "huggingface_hub.file_download", "setuptools.sandbox",
                "IPython.core", "trl.trainer", "datasets.load", "fsspec.core", "tqdm.auto"]
MODULES = sorted(sys.stdlib_module_names - {"__future__"}) + _THIRD_PARTY
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}(\.[A-Za-z_][A-Za-z0-9_]{0,10})?",
                      fullmatch=True).filter(lambda n: "__" not in n)


def _fails(r: fp.Result) -> bool:
    verdict = Policy().decide(r.findings)
    return verdict.decision is Decision.FAIL and any(
        f.rule_id in ("AS430", "AS446") and f.severity is Severity.CRITICAL for f in r.findings)


@pytest.mark.parametrize("wrapper", sorted(fc.WRAPPERS))
@pytest.mark.parametrize("path", sorted(fc.PATHS))
def test_every_construction_path_and_container_fails(tmp_path: Path, path: str,
                                                     wrapper: str) -> None:
    name, wrap = fc.WRAPPERS[wrapper]
    data = wrap(fc.PATHS[path]("logging", "FileHandler"))
    r = fp.scan_pickle_bytes(tmp_path, data, name=name)
    assert _fails(r), [(f.rule_id, f.message) for f in r.findings]
    assert "logging.FileHandler" in str([f.evidence for f in r.of("AS446")])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(module=st.sampled_from(MODULES), name=NAMES, path=st.sampled_from(sorted(fc.PATHS)))
def test_any_unlisted_callable_fails(tmp_path: Path, module: str, name: str, path: str) -> None:
    if f"{module}.{name}" in SAFE:
        return
    r = fp.scan_pickle_bytes(tmp_path, fc.PATHS[path](module, name))
    assert _fails(r), (module, name, path, [(f.rule_id, f.message) for f in r.findings])


@pytest.mark.parametrize(("module", "name"), [
    ("idlelib.pyshell", "ModifiedInterpreter.runcode"), ("venv", "create"),
    ("logging", "FileHandler"), ("pydoc", "pipepager"), ("distutils.file_util", "write_file"),
    ("asyncio.unix_events", "_UnixSubprocessTransport._start"), ("zipfile", "ZipFile.extractall"),
    ("_osx_support", "_read_output"), ("ensurepip", "_run_pip"),
    ("lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
])
def test_published_scanner_bypasses_fail(tmp_path: Path, module: str, name: str) -> None:
    for path in ("reduce_stack_global", "memo", "newobj"):
        r = fp.scan_pickle_bytes(tmp_path, fc.PATHS[path](module, name))
        assert _fails(r), (module, name, path)


def test_allowlisted_calls_alone_pass(tmp_path: Path) -> None:
    """The negative: only allowlisted callables, with globals reachable nowhere, stay info."""
    data = b"\x80\x02" + b"ccollections\nOrderedDict\n)R}" + fp.u("k") + b"K\x01sb."
    r = fp.scan_pickle_bytes(tmp_path, data)
    assert r.max_severity() == "info", r.findings


# -- data containers (AS447) --------------------------------------------------------------------

def test_AS447_torch_saved_training_arguments(tmp_path: Path) -> None:
    import torch
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True)
    torch.save(args, tmp_path / "training_args.bin")
    r = fp.scan_pickle(tmp_path / "training_args.bin")
    assert r.max_severity() == "low", [(f.rule_id, f.message) for f in r.findings]
    (hit,) = r.of("AS447")
    classes = hit.evidence["classes"]
    assert isinstance(classes, dict)
    assert "transformers.training_args.TrainingArguments" in classes
    assert "transformers.trainer_utils.IntervalStrategy" in classes
    assert Policy().decide(r.findings).decision is Decision.PASS


def _reduce_kwargs_training_args() -> bytes:
    """TrainingArguments(...) called with arguments: __init__ and __post_init__ run."""
    return fc.reduce_p0("transformers.training_args", "TrainingArguments")


def test_AS447_negative_other_paths_of_a_listed_class_fail(tmp_path: Path) -> None:
    cls = "ctransformers.training_args\nTrainingArguments\n"
    cases = {
        "reduce": _reduce_kwargs_training_args(),
        "newobj_with_args": b"\x80\x02" + cls.encode() + b"(S'x'\nt\x81.",
        "build_tuple_state": b"\x80\x02" + cls.encode() + b")\x81N}\x86b.",
        "enum_by_newobj": b"\x80\x02ctransformers.trainer_utils\nIntervalStrategy\n)\x81.",
        "enum_with_a_call": b"\x80\x02ctransformers.trainer_utils\nIntervalStrategy\n"
                            b"(cbuiltins\nset\n)RtR.",
    }
    for label, data in cases.items():
        r = fp.scan_pickle_bytes(tmp_path, data)
        assert _fails(r), (label, [(f.rule_id, f.message) for f in r.findings])
        assert "AS447" not in r.ids(), label


def _enum_by_name(enum_module: str, enum_name: str, member: str, *,
                  getter: tuple[str, str] = ("builtins", "getattr")) -> bytes:
    """What Python >= 3.12 writes for an enum member (Enum.__reduce_ex__ returns
    `getattr, (cls, name)`): STACK_GLOBAL getattr, STACK_GLOBAL the class, the name, TUPLE2,
    REDUCE; built opcode by opcode, never by pickling."""
    return (fp.u(getter[0]) + fp.u(getter[1]) + b"\x93\x94"
            + fp.u(enum_module) + fp.u(enum_name) + b"\x93\x94"
            + fp.u(member) + b"\x86R\x94")


def _args_with_enums_by_name(*members: bytes) -> bytes:
    """NEWOBJ TrainingArguments, BUILD {"k0": member0, ...}; getattr memoised and reused."""
    body = fp.u("transformers.training_args") + fp.u("TrainingArguments") + b"\x93)\x81}("
    first, *rest = members
    body += fp.u("k0") + first
    for i, m in enumerate(rest, 1):
        body += fp.u(f"k{i}") + m
    return fp.p4(body + b"ub")


def test_AS447_enum_member_by_name(tmp_path: Path) -> None:
    """training_args.bin of newer transformers (#23): getattr(IntervalStrategy, "STEPS") and
    the memoised getattr reused for a second enum are data, not a call of getattr."""
    reuse = (b"h\x00" + fp.u("accelerate.utils.dataclasses") + fp.u("DistributedType")
             + b"\x93" + fp.u("NO") + b"\x86R")
    data = _args_with_enums_by_name(
        _enum_by_name("transformers.trainer_utils", "IntervalStrategy", "STEPS"), reuse)
    r = fp.scan_pickle_bytes(tmp_path, data, "training_args.bin")
    assert r.max_severity() == "low", [(f.rule_id, f.message) for f in r.findings]
    (hit,) = r.of("AS447")
    classes = hit.evidence["classes"]
    assert isinstance(classes, dict)
    assert {"transformers.trainer_utils.IntervalStrategy",
            "accelerate.utils.dataclasses.DistributedType"} <= set(classes)
    assert Policy().decide(r.findings).decision is Decision.PASS


def test_AS447_negative_other_getattr_stays_dangerous(tmp_path: Path) -> None:
    enum = ("transformers.trainer_utils", "IntervalStrategy")
    cases = {
        "unlisted_class": _enum_by_name("os", "path", "SEP"),
        "unknown_class": _enum_by_name("mypkg.mod", "Mode", "STEPS"),
        "dunder_name": _enum_by_name(*enum, "__class__"),
        "lowercase_attr": _enum_by_name(*enum, "mro"),
        "not_getattr": _enum_by_name(*enum, "STEPS", getter=("builtins", "setattr")),
        # getattr handed to a call instead of called on the enum
        "getattr_as_argument": fp.u("builtins") + fp.u("getattr") + b"\x93\x94"
        + fp.u("collections") + fp.u("OrderedDict") + b"\x93h\x00\x85R",
        # the member pattern once, then the memoised getattr on something else
        "pattern_then_misuse": _enum_by_name(*enum, "STEPS") + b"0h\x00"
        + fp.u("collections") + fp.u("OrderedDict") + b"\x93" + fp.u("fromkeys") + b"\x86R",
    }
    for label, body in cases.items():
        r = fp.scan_pickle_bytes(tmp_path, fp.p4(body), "training_args.bin")
        assert _fails(r), (label, [(f.rule_id, f.message) for f in r.findings])
    r = fp.scan_pickle_bytes(tmp_path, fp.p4(_enum_by_name(*enum, "mro")), "training_args.bin")
    assert "AS430" in r.ids()


def test_AS447_policy_adds_classes(tmp_path: Path) -> None:
    data = b"\x80\x02cmytrainer.config\nTrainConfig\n)\x81}" + fp.u("lr") + b"K\x03sb."
    assert _fails(fp.scan_pickle_bytes(tmp_path, data))
    from adapterscan.emit import Emitter
    from adapterscan.static.limits import StaticLimits
    from adapterscan.static.pickle.ops import analyze_pickle_file

    policy = Policy(params={"AS447": {"extra_classes": ["mytrainer.config.TrainConfig"]}})
    emit = Emitter(policy.apply_to(fp.as4_ruleset()))
    path = tmp_path / "training_args.bin"
    path.write_bytes(data)
    analyze_pickle_file(path, path.name, emit, StaticLimits())
    assert {f.rule_id for f in emit.findings} == {"AS447", "AS434"}
    assert policy.decide(emit.findings).decision is Decision.PASS


@pytest.mark.slow
def test_training_args_written_by_the_real_trainer(tmp_path: Path) -> None:
    """A Trainer's own training_args.bin passes; the same file with one global swapped fails."""
    import io
    import zipfile

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2))
    args = TrainingArguments(output_dir=str(tmp_path / "run"), report_to=[], use_cpu=True,
                             save_strategy="no", logging_strategy="no")
    Trainer(model=model, args=args).save_model(str(tmp_path / "saved"))
    real = tmp_path / "saved" / "training_args.bin"
    r = fp.scan_pickle(real)
    assert r.max_severity() == "low" and r.of("AS447"), [(f.rule_id, f.message)
                                                          for f in r.findings]

    src = zipfile.ZipFile(real)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"transformers.trainer_utils\nSchedulerType\n",
                                    b"logging\nFileHandler\n", 1)
            out.writestr(info.filename, data)
    (tmp_path / "swapped.bin").write_bytes(buf.getvalue())
    swapped = fp.scan_pickle(tmp_path / "swapped.bin")
    assert _fails(swapped)
    assert "logging.FileHandler" in swapped.of("AS446")[0].evidence["calls"]  # type: ignore[operator]


# -- NumPy arrays (AS448 and object arrays) ---------------------------------------------------

def test_numeric_npy_and_npz_are_data(tmp_path: Path) -> None:
    import numpy as np

    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.savez_compressed(tmp_path / "b.npz", x=np.ones(5), y=np.zeros((2, 2), np.int8))
    for name in ("a.npy", "b.npz"):
        r = fp.scan_pickle(tmp_path / name)
        assert r.max_severity() == "info" and r.skipped == (), (name, r.findings)
        (summary,) = r.of("AS434")
        assert summary.evidence["npy_object_arrays"] == 0


def test_object_npy_with_plain_data_is_walked_and_clean(tmp_path: Path) -> None:
    import numpy as np

    np.save(tmp_path / "o.npy", np.array([{"a": 1}, "s", None], dtype=object),
            allow_pickle=True)
    r = fp.scan_pickle(tmp_path / "o.npy")
    assert r.max_severity() == "info", r.findings
    (summary,) = r.of("AS434")
    assert summary.evidence["npy_object_arrays"] == 1 and summary.evidence["pickles"] == 1


@pytest.mark.parametrize(("label", "data"), [
    ("bad magic version", b"\x93NUMPY\x09\x00" + b"\x10\x00" + b"{}" + b" " * 14),
    ("not a literal", fc.npy_raw("{'descr': __import__('os'), 'fortran_order': False, "
                                 "'shape': (1,), }", b"\0" * 4)),
    ("extra key", fc.npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), "
                             "'x': 1}", b"\0" * 4)),
    ("negative shape", fc.npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
                                  b"")),
    ("trailing bytes", fc.npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
                                  b"\0" * 4 + fc.reduce_p0("os", "system"))),
    ("short data", fc.npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (10,)}",
                              b"\0" * 8)),
    ("huge header length", b"\x93NUMPY\x02\x00" + (1 << 30).to_bytes(4, "little") + b"{"),
])
def test_AS448_malformed_npy(tmp_path: Path, label: str, data: bytes) -> None:
    r = fp.scan_pickle_bytes(tmp_path, data, name="x.npy")
    (hit,) = r.of("AS448")
    assert hit.severity is Severity.HIGH, label
    assert Policy().decide(r.findings).decision is Decision.FAIL


def test_AS448_negative_v2_and_v3_headers(tmp_path: Path) -> None:
    for version in ((2, 0), (3, 0)):
        data = fc.npy_raw("{'descr': '<i2', 'fortran_order': True, 'shape': (2, 1), }",
                          b"\0" * 4, version)
        r = fp.scan_pickle_bytes(tmp_path, data, name="v.npy")
        assert "AS448" not in r.ids() and r.max_severity() == "info", version


def test_AS436_malformed_pickle_fails(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, b"\x80\x04" + fp.u("x") + b"\xff")
    (hit,) = r.of("AS436")
    assert hit.severity is Severity.HIGH
    assert Policy().decide(r.findings).decision is Decision.FAIL
