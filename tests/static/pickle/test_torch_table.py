"""torch's tensor-dict pattern read from data.pkl by an opcode walk: what torch.save writes is
read field by field; anything else is refused with a reason, never evaluated."""

from __future__ import annotations

import collections
import io
import zipfile

import pytest

from adapterscan.static.pickle.torch_table import TableError, read_table
from tests.static.factories_torch_archive import Entry, data_pkl


def _pkl(obj: object) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(buf) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith("/data.pkl")]
        return zf.read(name)


def _read(data: bytes) -> list[object]:
    return list(read_table(data, 100_000, 1_000))


def test_torch_save_fields_are_read() -> None:
    # Only this test needs torch: the refusals below run on hand-assembled pickles everywhere.
    torch = pytest.importorskip("torch")
    base = torch.arange(40, dtype=torch.float16)
    sd = collections.OrderedDict(a=base[8:20].view(3, 4), b=torch.zeros(2, 5, dtype=torch.bfloat16),
                                 p=torch.nn.Parameter(torch.ones(7)))
    a, b, p = read_table(_pkl(sd), 100_000, 1_000)
    assert (a.name, a.storage.type_name, a.storage.numel, a.offset, a.size, a.stride) == (
        "a", "torch.HalfStorage", 40, 8, (3, 4), (4, 1))
    assert (b.storage.type_name, b.size, b.storage.key != a.storage.key) == (
        "torch.BFloat16Storage", (2, 5), True)
    assert (p.name, p.size, p.storage.numel) == ("p", (7,), 7)


@pytest.mark.parametrize(("data", "reason"), [
    (data_pkl([Entry("x", (2,)), Entry("x", (2,))]), "appears twice"),
    (data_pkl([Entry("x", (2,))])[:-1], "exhausted before seeing STOP"),
    (b"\x80\x02}q\x00h\x01.", "malformed pickle"),  # memo miss
    (b"\x80\x02}(X\x01\x00\x00\x00xK\x01u.", "not a name mapped to a tensor"),
    (b"\x80\x02]q\x00.", "opcode EMPTY_LIST"),
    (b"\x80\x02K\x01.", "not a dict of tensors"),
    (data_pkl([Entry("x", (2,), rebuild="torch._utils\n_rebuild_qtensor")]), "not part of"),
])
def test_anything_else_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(TableError, match=reason):
        _read(data)


def test_caps_bound_the_walk() -> None:
    entries = [Entry(f"t{i}", (2,), key=str(i)) for i in range(50)]
    with pytest.raises(TableError, match="more than 10 entries"):
        read_table(data_pkl(entries), 100_000, 10)
    with pytest.raises(TableError, match="more than 100 opcodes"):
        read_table(data_pkl(entries), 100, 1_000)
