"""Zip container tricks (AS437-AS445): one positive and one negative generated fixture each."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from adapterscan.static.limits import StaticLimits
from adapterscan.static.pickle import zip_container as zc
from tests.static import factories_pickle as fp


@pytest.fixture(scope="module")
def benign_torch() -> bytes:
    return fp.benign_torch_bytes()


def test_malicious_data_pkl_in_torch_zip(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.malicious_archive())
    assert r.of("AS430")
    assert r.of("AS430")[0].evidence["at"] == ["archive/data.pkl@0"]


def test_benign_torch_zip_has_no_zip_findings(tmp_path: Path, benign_torch: bytes) -> None:
    r = fp.scan_pickle_bytes(tmp_path, benign_torch)
    assert not {f"AS{n}" for n in range(437, 446)} & r.ids()


def test_AS437_encryption_flag_still_scanned(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.patch_headers(fp.malicious_archive(), flag_or=0x1))
    assert r.of("AS437")
    assert r.of("AS430")  # torch ignores the flag, so do we
    assert "AS437" not in fp.scan_pickle_bytes(tmp_path, fp.malicious_archive()).ids()
    really = fp.patch_headers(fp.torch_like_zip({"archive/data/0": bytes(range(256))}),
                              flag_or=0x1)
    r2 = fp.scan_pickle_bytes(tmp_path, really)
    # Raw data torch never executes is not skipped for the flag; the archive holds no pickle,
    # which is reported on its own (AS445).
    assert r2.of("AS437") and r2.of("AS445")
    assert not any("encrypt" in s for s in r2.skipped)
    enc_pkl = fp.patch_headers(fp.torch_like_zip({"archive/data.pkl": bytes(range(256))}),
                               flag_or=0x1)
    assert any("encrypted" in s for s in fp.scan_pickle_bytes(tmp_path, enc_pkl).skipped)


def test_AS438_crc_mismatch(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.patch_headers(fp.malicious_archive(), crc=0))
    assert r.of("AS438") and r.of("AS430")
    assert "AS438" not in fp.scan_pickle_bytes(tmp_path, fp.malicious_archive()).ids()


def test_AS439_duplicate_member(tmp_path: Path) -> None:
    data = fp.torch_like_zip({"archive/data.pkl": fp.os_system_p0()},
                             duplicate="archive/data.pkl")
    assert fp.scan_pickle_bytes(tmp_path, data).of("AS439")
    assert "AS439" not in fp.scan_pickle_bytes(tmp_path, fp.malicious_archive()).ids()


def test_AS440_unsafe_member_name(tmp_path: Path) -> None:
    data = fp.torch_like_zip({"../../evil.pkl": fp.os_system_p0()})
    r = fp.scan_pickle_bytes(tmp_path, data)
    assert r.of("AS440") and r.of("AS430")
    assert "AS440" not in fp.scan_pickle_bytes(tmp_path, fp.malicious_archive()).ids()


def test_AS441_local_and_central_names_differ(tmp_path: Path) -> None:
    data = fp.patch_headers(fp.malicious_archive(), local_name=b"archive/data.txt")
    r = fp.scan_pickle_bytes(tmp_path, data)
    assert r.of("AS441") and r.of("AS430")
    assert "AS441" not in fp.scan_pickle_bytes(tmp_path, fp.malicious_archive()).ids()


def test_AS442_compression_bomb(tmp_path: Path) -> None:
    data = fp.torch_like_zip({"archive/data/0": bytes(4 << 20)}, compress=zipfile.ZIP_DEFLATED)
    r = fp.scan_pickle_bytes(tmp_path, data)
    assert r.of("AS442") and r.skipped
    small = fp.torch_like_zip({"archive/data/0": bytes(1000)}, compress=zipfile.ZIP_DEFLATED)
    assert "AS442" not in fp.scan_pickle_bytes(tmp_path, small).ids()


def test_AS443_prepended_pickle_polyglot(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, fp.os_system_p0() + fp.torch_like_zip({"a/x": b"1"}))
    assert r.of("AS443") and r.of("AS430")
    trailing = fp.scan_pickle_bytes(tmp_path, fp.malicious_archive() + b"junk" * 10)
    assert trailing.of("AS443")
    assert "AS443" not in fp.scan_pickle_bytes(tmp_path, fp.malicious_archive()).ids()


def test_AS444_unparseable_zip(tmp_path: Path) -> None:
    r = fp.scan_pickle_bytes(tmp_path, b"PK\x03\x04" + bytes(100))
    assert r.of("AS444") and r.skipped
    assert "AS444" not in fp.scan_pickle_bytes(tmp_path, fp.malicious_archive()).ids()


def test_AS445_7z_member(tmp_path: Path) -> None:
    data = fp.torch_like_zip({"archive/data.pkl": fp.SEVEN_Z})
    r = fp.scan_pickle_bytes(tmp_path, data)
    assert r.of("AS445") and r.skipped
    r2 = fp.scan_pickle_bytes(tmp_path, fp.SEVEN_Z)
    assert r2.of("AS445")
    assert "AS445" not in fp.scan_pickle_bytes(tmp_path, fp.malicious_archive()).ids()


def test_nested_zip_inside_zip(tmp_path: Path) -> None:
    inner = fp.malicious_archive()
    r = fp.scan_pickle_bytes(tmp_path, fp.torch_like_zip({"outer/blob": inner}))
    assert r.of("AS430")
    deep = inner
    for _ in range(5):
        deep = fp.torch_like_zip({"z/blob": deep})
    r2 = fp.scan_pickle_bytes(tmp_path, deep, limits=StaticLimits(max_nesting=2))
    assert r2.of("AS435") and r2.skipped


def test_zip_member_limit(tmp_path: Path) -> None:
    data = fp.torch_like_zip({f"a/{i}": b"x" for i in range(30)})
    r = fp.scan_pickle_bytes(tmp_path, data, limits=StaticLimits(max_zip_members=10))
    assert r.of("AS435") and r.skipped


def test_pickle_named_storage_member_is_found(tmp_path: Path) -> None:
    """A pickle hidden in a member not called data.pkl is still walked."""
    data = fp.torch_like_zip({"archive/data.pkl": b"\x80\x02N.", "archive/data/7":
                              fp.os_system_p0()})
    assert fp.scan_pickle_bytes(tmp_path, data).of("AS430")


def test_mutated_zips_never_raise(tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    seeds = [fp.malicious_archive(), fp.torch_like_zip({"a/data.pkl": fp.nested_pickle_loads(),
                                                        "a/z": fp.malicious_archive()})]
    for i in range(200):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        fp.scan_pickle_bytes(tmp_path, bytes(data), name=f"z{i}.bin")


def _corrupt_deflated(first_byte: int = 0xFF) -> bytes:
    """A torch zip whose data.pkl is deflated, then its deflate stream broken: 0xFF opens a block
    of the reserved type 3, which no inflater accepts."""
    data = bytearray(fp.torch_like_zip({"archive/data.pkl": fp.os_system_p0() * 20,
                                        "archive/version": b"3\n"},
                                       compress=zipfile.ZIP_DEFLATED))
    n, extra = struct.unpack_from("<HH", data, 26)
    data[30 + n + extra] = first_byte
    return bytes(data)


def test_corrupt_deflate_stream_is_malformed_not_a_crash(tmp_path: Path) -> None:
    # Found by the fuzzer (issue 25): zlib.error escaped the zip reader, and the static stage
    # recorded an internal error instead of a finding.
    r = fp.scan_pickle_bytes(tmp_path, _corrupt_deflated())
    [malformed] = r.of("AS444")
    assert "deflate data is corrupt" in malformed.message
    assert any("member data corrupt" in s for s in r.skipped)


def test_the_zip_reader_raises_its_own_error_on_a_corrupt_member() -> None:
    data = _corrupt_deflated()
    f = io.BytesIO(data)
    members, _ = zc.open_zip(f, len(data), 10)
    pkl = next(m for m in members if m.name.endswith("data.pkl"))
    with pytest.raises(zc.ZipUnreadable, match="deflate data is corrupt"):
        zc.member_digest(f, pkl, 1 << 20)
