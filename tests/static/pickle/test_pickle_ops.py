"""Pickle opcode walk: one positive and one negative generated fixture per AS43x rule."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from adapterscan.static.limits import StaticLimits
from adapterscan.static.pickle.allowlist import Verdict, classify
from tests.static import factories_pickle as fp


@pytest.fixture(scope="module")
def benign_torch() -> bytes:
    return fp.benign_torch_bytes()


def test_benign_torch_save_has_nothing_above_info(tmp_path: Path, benign_torch: bytes) -> None:
    r = fp.scan_pickle_bytes(tmp_path, benign_torch)
    assert r.max_severity() == "info", [(f.rule_id, f.message) for f in r.findings]
    assert r.skipped == ()
    (summary,) = r.of("AS434")
    globs = summary.evidence["globals"]
    assert isinstance(globs, dict)
    assert globs["torch._utils._rebuild_tensor_v2"] == "safe"
    assert summary.evidence["pickles"] == 1


def test_benign_legacy_torch_format_walks_every_pickle(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(3), "n": 2}, path, _use_new_zipfile_serialization=False)
    r = fp.scan_pickle(path)
    assert r.max_severity() == "info"
    (summary,) = r.of("AS434")
    assert summary.evidence["pickles"] == 5  # magic, protocol, sys info, object, storage keys


@pytest.mark.parametrize("data", [fp.os_system_p0(), fp.inst_p0(), fp.memo_confusion(),
                                  fp.memoize_index_trick()],
                         ids=["global-p0", "inst-p0", "memo-confusion", "memoize-index"])
def test_AS430_dangerous_global(tmp_path: Path, data: bytes) -> None:
    r = fp.scan_pickle_bytes(tmp_path, data)
    hits = r.of("AS430")
    assert hits, r.findings
    assert hits[0].evidence["global"] in ("posix.system", "os.system")
    assert "collections.OrderedDict" not in str(r.of("AS430"))


def test_AS430_negative_allowlisted_only(tmp_path: Path) -> None:
    data = fp.p4(fp.u("collections") + fp.u("OrderedDict") + b"\x93)R")
    r = fp.scan_pickle_bytes(tmp_path, data)
    assert "AS430" not in r.ids() and "AS431" not in r.ids()


def test_AS431_unknown_global_only_referenced(tmp_path: Path) -> None:
    data = fp.p4(b"}" + fp.u("cls") + fp.u("mypkg.hooks") + fp.u("Thing") + b"\x93s")
    r = fp.scan_pickle_bytes(tmp_path, data)
    (hit,) = r.of("AS431")
    assert hit.evidence["globals"] == {"mypkg.hooks.Thing": 1}
    assert hit.severity.value == "medium"
    assert "AS430" not in r.ids() and "AS446" not in r.ids()


def test_AS431_negative_a_called_unknown_global_is_AS446(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.unknown_global())
    assert "AS431" not in r.ids()
    (hit,) = r.of("AS446")
    assert hit.severity.value == "critical"
    assert hit.evidence["calls"]["mypkg.hooks.Thing"]["how"] == ["REDUCE"]  # type: ignore[index]


def test_AS446_codecs_encode_with_other_codec(tmp_path: Path) -> None:
    data = fp.p4(fp.u("_codecs") + fp.u("encode") + b"\x93" + fp.u("x") + fp.u("rot13")
                 + b"\x86R")
    assert "AS446" in fp.scan_pickle_bytes(tmp_path, data).ids()
    ok = fp.p4(fp.u("_codecs") + fp.u("encode") + b"\x93" + fp.u("x") + fp.u("latin1")
               + b"\x86R")
    assert fp.scan_pickle_bytes(tmp_path, ok).max_severity() == "info"


def test_AS432_unresolved_stack_global(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.stack_global_computed())
    assert r.of("AS432")
    assert "string.capwords" in r.of("AS446")[0].evidence["calls"]  # type: ignore[operator]


def test_AS432_negative_memo_fetched_strings_resolve(tmp_path: Path) -> None:
    body = fp.u("collections") + b"\x94" + fp.u("OrderedDict") + b"\x94" + b"00"
    body += b"h\x00h\x01\x93)R"
    r = fp.scan_pickle_bytes(tmp_path, fp.p4(body))
    assert "AS432" not in r.ids()
    assert r.max_severity() == "info"


def test_AS433_nested_pickle_loads(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.nested_pickle_loads())
    assert r.of("AS433")
    dangerous = {f.evidence["global"] for f in r.of("AS430")}
    assert {"pickle.loads", "os.system"} <= dangerous


def test_AS433_nested_pickle_hidden_in_codecs_encode(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.nested_hidden_in_codecs())
    assert r.of("AS433")
    assert "posix.system" in {f.evidence["global"] for f in r.of("AS430")}


def test_AS433_negative_plain_bytes(tmp_path: Path) -> None:
    data = fp.p4(fp.binbytes(b"\x80\x02not a pickle at all" * 3))
    assert "AS433" not in fp.scan_pickle_bytes(tmp_path, data).ids()


def test_AS434_summary_counts_calls(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.unknown_global())
    (summary,) = r.of("AS434")
    assert summary.evidence["calls"] == {"REDUCE": 1}
    assert summary.severity.value == "info"


def test_AS434_negative_no_summary_for_unreadable(tmp_path: Path) -> None:
    r = fp.scan_pickle(tmp_path / "missing.bin")
    assert "AS434" not in r.ids() and r.skipped


def test_AS435_opcode_limit(tmp_path: Path) -> None:
    limits = StaticLimits(max_pickle_opcodes=100)
    r = fp.scan_pickle_bytes(tmp_path, fp.many_opcodes(200), limits=limits)
    assert r.of("AS435") and r.skipped
    r2 = fp.scan_pickle_bytes(tmp_path, fp.many_opcodes(20), limits=limits)
    assert "AS435" not in r2.ids() and r2.skipped == ()


def test_AS435_memo_limit(tmp_path: Path) -> None:
    body = b"".join(b"N" + b"r" + i.to_bytes(4, "little") for i in range(50)) + b"N"
    r = fp.scan_pickle_bytes(tmp_path, fp.p4(body), limits=StaticLimits(max_pickle_memo=10))
    assert r.of("AS435")


def test_AS435_nesting_limit(tmp_path: Path) -> None:
    data = fp.os_system_p0()
    for _ in range(4):
        data = fp.p4(fp.binbytes(data))
    r = fp.scan_pickle_bytes(tmp_path, data, limits=StaticLimits(max_nesting=2))
    assert r.of("AS435") and r.skipped


def test_AS436_truncated_payload_still_judged(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.truncated_after_payload())
    assert r.of("AS436")
    assert r.of("AS430")  # the prefix runs in a loader before the error


def test_AS436_negative_well_formed(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, pickle.dumps({"a": [1, 2.0, "x", b"y"]}, protocol=5))
    assert "AS436" not in r.ids()
    assert r.max_severity() == "info"


@pytest.mark.parametrize("proto", range(0, 6))
def test_plain_data_pickles_are_clean_in_every_protocol(tmp_path: Path, proto: int) -> None:
    data = pickle.dumps({"k": [1, (2, 3), "s", None, True, 1.5, frozenset({1}), b"y" * 300,
                               bytearray(b"z"), slice(1, 2), complex(1, 2)]}, protocol=proto)
    r = fp.scan_pickle_bytes(tmp_path, data)
    assert r.max_severity() == "info", [(f.rule_id, f.message) for f in r.findings]


def test_allowlist_is_exact() -> None:
    assert classify("collections", "OrderedDict")[0] is Verdict.SAFE
    assert classify("collections", "OrderedDict.__init__.__globals__")[0] is Verdict.DANGEROUS
    assert classify("__builtin__", "eval", protocol=2) == (Verdict.DANGEROUS, "builtins.eval")
    assert classify("torch", "load")[0] is Verdict.DANGEROUS
    assert classify("torch.storage", "_load_from_bytes")[0] is Verdict.DANGEROUS
    assert classify("numpy", "ndarray")[0] is Verdict.SAFE
    assert classify("sklearn.tree", "DecisionTree")[0] is Verdict.UNKNOWN


def test_hostile_bytes_never_raise(tmp_path: Path) -> None:
    import random

    rng = random.Random(0)
    seeds = [fp.os_system_p0(), fp.memo_confusion(), fp.nested_pickle_loads()]
    for i in range(150):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        fp.scan_pickle_bytes(tmp_path, bytes(data), name=f"f{i}.bin")


def test_numpy_rng_state_is_clean(tmp_path: Path) -> None:
    """rng_state.pth style: numpy arrays pickled with protocol 2 use _codecs.encode(s, latin1)."""
    import numpy as np
    import torch

    path = tmp_path / "rng_state.pth"
    torch.save({"python": (3, tuple(range(5)), None), "numpy": np.random.get_state(),
                "cpu": torch.get_rng_state()}, path)
    r = fp.scan_pickle(path)
    assert r.max_severity() == "info", [(f.rule_id, f.message) for f in r.findings]


def test_huge_sparse_non_pickle_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "adapter_model.bin"
    with open(path, "wb") as f:
        f.truncate(50 * 1024**3)  # 50 GB of holes: one byte read before the walk stops
    r = fp.scan_pickle(path)
    assert r.of("AS436")


def test_big_bytes_argument_is_streamed_not_held(tmp_path: Path) -> None:
    from adapterscan.static.pickle import vm as pickle_vm

    big = pickle_vm._BIG_ARG + 10
    data = b"\x80\x04\x8e" + big.to_bytes(8, "little") + bytes(big) + b"."
    r = fp.scan_pickle_bytes(tmp_path, data)
    assert r.max_severity() == "info"
    truncated = b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"abc"
    r2 = fp.scan_pickle_bytes(tmp_path, truncated)
    assert r2.of("AS436") and "AS435" not in r2.ids()


def test_AS430_build_on_imported_class(tmp_path: Path) -> None:
    """BUILD on a global rewrites an allowlisted class's attributes (weights_only gadget)."""
    body = fp.u("torch._utils") + fp.u("_rebuild_tensor_v2") + b"\x93" + b"}" + fp.u("x")
    body += b"N" + b"s" + b"b"
    r = fp.scan_pickle_bytes(tmp_path, fp.p4(body))
    assert any("BUILD" in str(f.evidence["global"]) for f in r.of("AS430"))


def test_main_module_class_is_unknown_not_dangerous() -> None:
    assert classify("__main__", "Config")[0] is Verdict.UNKNOWN
    assert classify("__main__", "__builtins__")[0] is Verdict.DANGEROUS
