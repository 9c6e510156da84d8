"""Adversarial end-to-end suite: hostile adapter folders through the real `adapterscan scan` CLI.

Every hostile folder must end in exit 1 (reject) or 3 (incomplete), never 0 or a traceback; the
JSON report must validate against docs/report.schema.json and name the offending file under the
right rule family; SARIF must stay valid JSON. Most cases run in-process through typer's
CliRunner (fast); a subset runs `python -m adapterscan` in a subprocess as users do.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import hostile_factories as hf
from tests.cli_runner import Report, rule_ids, schema_validator
from tests.factories import adapter_config, raw_safetensors, write_adapter

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_EXITS = {1, 3}


def run_cli(folder: Path | str, *extra: str, fmt: str = "json",
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess; stdout is decoded leniently (it must be ASCII-safe
    for JSON/SARIF, and the text format is checked separately)."""
    proc = subprocess.run([sys.executable, "-m", "adapterscan", "scan", os.fsdecode(folder),
                           "--format", fmt, *extra], capture_output=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def files_with(doc: Report, prefix: str) -> set[str]:
    """Files named in findings whose rule id starts with `prefix` (e.g. 'AS2')."""
    return {f["location"]["file"] for f in doc["findings"]
            if f["rule_id"].startswith(prefix) and f["location"]["file"]}


def skipped(doc: Report) -> set[str]:
    return {s["path"] for s in doc["skipped"]}


def assert_hostile(code: int, doc: Report, family: str, file: str) -> None:
    assert code in HOSTILE_EXITS, (code, rule_ids(doc), doc["skipped"], doc["errors"])
    assert doc["verdict"]["decision"] != "pass" or not doc["complete"]
    assert file in files_with(doc, family), (family, file, sorted(rule_ids(doc)))
    assert doc["errors"] == [], doc["errors"]  # an analyzer crash is not a finding


# --- negative control ---------------------------------------------------------------------------

def test_benign_adapter_passes_in_every_format(tmp_path: Path) -> None:
    folder = write_adapter(tmp_path / "ok")
    proc = run_cli(folder)
    doc = json.loads(proc.stdout)
    schema_validator().validate(doc)
    assert proc.returncode == 0 and doc["verdict"]["decision"] == "pass" and doc["complete"]
    assert all(f["sha256"] for f in doc["subject"]["files"])
    sarif = run_cli(folder, fmt="sarif")
    assert sarif.returncode == 0 and json.loads(sarif.stdout)["version"] == "2.1.0"
    text = run_cli(folder, fmt="text")
    assert text.returncode == 0 and "PASS" in text.stdout


@pytest.mark.parametrize("value", ["1e999", "-1e999", "1e308"])
def test_non_finite_config_numbers_still_give_every_report(tmp_path: Path, value: str) -> None:
    """Python's json reads 1e999 as inf; no format may then fail to write the report."""
    folder = write_adapter(tmp_path / "a")
    cfg = (folder / "adapter_config.json").read_text().replace('"lora_alpha": 8',
                                                               f'"lora_alpha": {value}')
    assert value in cfg
    (folder / "adapter_config.json").write_text(cfg)
    proc = run_cli(folder)
    assert proc.returncode in (0, 1, 3), proc.stderr
    doc = json.loads(proc.stdout)
    schema_validator().validate(doc)
    for fmt in ("sarif", "html", "text"):
        assert run_cli(folder, fmt=fmt).returncode == proc.returncode


# --- safetensors container ----------------------------------------------------------------------

_ST = hf.hostile_safetensors()
_ST_AS4 = {"pickle_named_safetensors", "zip_named_safetensors"}


@pytest.mark.parametrize("case", sorted(_ST))
def test_hostile_safetensors_is_flagged(cli: Any, tmp_path: Path, case: str) -> None:
    folder = hf.adapter_with(tmp_path / case, weights=_ST[case])
    code, doc = cli(folder)
    assert_hostile(code, doc, "AS4" if case in _ST_AS4 else "AS2", "adapter_model.safetensors")


@pytest.mark.parametrize("case", ["header_len_huge", "duplicate_keys", "trailing_zip",
                                  "pickle_named_safetensors"])
def test_hostile_safetensors_subprocess_json_and_sarif(tmp_path: Path, case: str) -> None:
    folder = hf.adapter_with(tmp_path / case, weights=_ST[case])
    proc = run_cli(folder)
    assert proc.returncode in HOSTILE_EXITS
    schema_validator().validate(json.loads(proc.stdout))
    sarif = json.loads(run_cli(folder, fmt="sarif").stdout)
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif["runs"][0]["results"] for loc in r["locations"]}
    assert "adapter_model.safetensors" in uris


def test_safetensors_in_subfolder_and_sharded_names(cli: Any, tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    (folder / "sub").mkdir()
    (folder / "sub" / "model-00001-of-00002.safetensors").write_bytes(_ST["overlap"])
    code, doc = cli(folder)
    assert_hostile(code, doc, "AS2", "sub/model-00001-of-00002.safetensors")


# --- pickles (raw opcodes only) -----------------------------------------------------------------

_PLACEMENTS: dict[str, Callable[[bytes], bytes]] = {
    "adapter_model.bin": lambda p: p,
    "training_args.bin": lambda p: p,
    "optimizer.pt": lambda p: p,
    "rng_state_0.pth": lambda p: p,
    "adapter_model.safetensors": lambda p: p,  # extension game: a pickle named safetensors
    "torch_zip/adapter_model.bin": hf.torch_zip,  # torch.save archive
}


def _pickle_folder(root: Path, placement: str, payload: bytes) -> tuple[Path, str]:
    name = placement.split("/")[-1]
    folder = root / "f"
    folder.mkdir()
    hf.write_config(folder)
    if name != "adapter_model.safetensors":
        (folder / "adapter_model.safetensors").write_bytes(hf.benign_safetensors())
    (folder / name).write_bytes(_PLACEMENTS[placement](payload))
    return folder, name


@pytest.mark.parametrize("placement", sorted(_PLACEMENTS))
@pytest.mark.parametrize("encoding", sorted(hf.ENCODINGS))
def test_malicious_pickle_encodings_and_placements(cli: Any, tmp_path: Path, encoding: str,
                                                   placement: str) -> None:
    folder, name = _pickle_folder(tmp_path, placement, hf.ENCODINGS[encoding]("os", "system"))
    code, doc = cli(folder)
    assert_hostile(code, doc, "AS4", name)
    assert code == 1
    assert name in {f["location"]["file"] for f in doc["findings"] if f["rule_id"] == "AS430"}


@pytest.mark.parametrize(("module", "name"), hf.DANGEROUS)
def test_dangerous_globals_are_rejected(cli: Any, tmp_path: Path, module: str, name: str) -> None:
    folder, fname = _pickle_folder(tmp_path, "adapter_model.bin",
                                   hf.memo_overwrite_p4(module, name))
    code, doc = cli(folder)
    assert code == 1
    assert_hostile(code, doc, "AS4", fname)


# Callables no denylist names: the allowlist fails them wherever they are called (AS446).
_UNLISTED = [("logging", "FileHandler"), ("pydoc", "pipepager"), ("mypkg.hooks", "Thing"),
             ("zipfile", "ZipFile.extractall")]


@pytest.mark.parametrize("placement", ["adapter_model.bin", "training_args.bin",
                                       "torch_zip/adapter_model.bin"])
@pytest.mark.parametrize("encoding", sorted(hf.ENCODINGS))
@pytest.mark.parametrize(("module", "name"), _UNLISTED)
def test_unlisted_callables_are_rejected(cli: Any, tmp_path: Path, module: str, name: str,
                                         encoding: str, placement: str) -> None:
    folder, fname = _pickle_folder(tmp_path, placement, hf.ENCODINGS[encoding](module, name))
    code, doc = cli(folder)
    assert code == 1
    assert_hostile(code, doc, "AS4", fname)
    assert fname in files_with(doc, "AS446") | files_with(doc, "AS430")


def test_object_arrays_in_npy_and_npz_are_walked(cli: Any, tmp_path: Path) -> None:
    from tests.static import factories_pickle_calls as fc

    folder = tmp_path / "f"
    folder.mkdir()
    hf.write_config(folder)
    (folder / "adapter_model.safetensors").write_bytes(hf.benign_safetensors())
    (folder / "extra.npy").write_bytes(fc.npy_object(fc.reduce_p0("logging", "FileHandler")))
    (folder / "more.npz").write_bytes(fc.zipped({"a.npy": fc.npy_object(
        fc.reduce_stack_global("mypkg.hooks", "Thing"))}))
    code, doc = cli(folder)
    assert code == 1
    assert {"extra.npy", "more.npz"} <= files_with(doc, "AS446")


def test_malicious_pickle_subprocess_in_all_formats(tmp_path: Path) -> None:
    folder, name = _pickle_folder(tmp_path, "torch_zip/adapter_model.bin",
                                  hf.nested_loads_p4(hf.global_p0("os", "system")))
    proc = run_cli(folder)
    assert proc.returncode == 1
    assert name in files_with(json.loads(proc.stdout), "AS4")
    assert run_cli(folder, fmt="sarif").returncode == 1
    text = run_cli(folder, fmt="text")
    assert text.returncode == 1 and name in text.stdout and "FAIL" in text.stdout


def _plain_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    return buf.getvalue()


def test_zip_named_bin_without_pickle_is_not_passed(cli: Any, tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "z")
    (folder / "adapter_model.bin").write_bytes(_plain_zip({"run.sh": b"#!/bin/sh\nid\n"}))
    code, _ = cli(folder)
    assert code in HOSTILE_EXITS


# --- adapter_config.json ------------------------------------------------------------------------

_CONFIGS: dict[str, bytes] = {
    "auto_mapping": json.dumps(adapter_config(auto_mapping={
        "base_model_class": "LlamaForCausalLM", "parent_library": "evil_pkg.models"})).encode(),
    "megatron_core": json.dumps(adapter_config(megatron_core="evil_pkg")).encode(),
    "not_utf8": b'{"peft_type": "LORA", "r": 4, "x": "\xff\xfe"}',
    "utf16": json.dumps(adapter_config()).encode("utf-16"),
    "json_list": b"[1, 2, 3]",
    "json_null": b"null",
    "not_json": b"peft_type = LORA",
    "empty": b"",
    "huge": b'{"r": 4, "pad": "' + b"a" * (6 * 1024 * 1024) + b'"}',
    "deep_nesting": b"[" * 100_000 + b"]" * 100_000,
    "nan": b'{"peft_type": "LORA", "r": NaN, "lora_alpha": Infinity, '
           b'"target_modules": ["q_proj", "v_proj"]}',
    "duplicate_r": b'{"peft_type": "LORA", "r": 4, "r": 4000, "lora_alpha": 8, '
                   b'"target_modules": ["q_proj", "v_proj"]}',
    "wrong_types": json.dumps(adapter_config(r="4", target_modules=7, lora_alpha=[1],
                                                rank_pattern="x")).encode(),
}


@pytest.mark.parametrize("case", sorted(_CONFIGS))
def test_hostile_adapter_config_is_flagged(cli: Any, tmp_path: Path, case: str) -> None:
    folder = hf.adapter_with(tmp_path / case, config=_CONFIGS[case])
    code, doc = cli(folder)
    assert_hostile(code, doc, "AS3", "adapter_config.json")


# --- links, special files, odd trees ------------------------------------------------------------

def _link(folder: Path, name: str, target: str) -> None:
    path = folder / name
    if path.exists() or path.is_symlink():
        path.unlink()
    os.symlink(target, path)


@pytest.mark.parametrize(("name", "target"), [
    ("adapter_config.json", "/etc/passwd"),
    ("adapter_model.safetensors", "/etc/passwd"),
    ("notes.txt", "/etc/passwd"),
    ("tokenizer.json", "../../../../../../etc/passwd"),
    ("etc", "/etc"),
    ("up", ".."),
])
def test_symlink_leaving_the_folder(cli: Any, tmp_path: Path, name: str, target: str) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    _link(folder, name, target)
    code, doc = cli(folder)
    assert_hostile(code, doc, "AS4", name)
    assert "AS411" in rule_ids(doc) and name in skipped(doc)


@pytest.mark.parametrize("links", [{"loop_a": "loop_b", "loop_b": "loop_a"}, {"self": "self"},
                                   {"dangling": "does/not/exist"}])
def test_symlink_that_never_resolves_is_incomplete(cli: Any, tmp_path: Path,
                                                   links: dict[str, str]) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    for name, target in links.items():
        _link(folder, name, target)
    code, doc = cli(folder)
    assert code == 3
    assert set(links) <= skipped(doc) and set(links) <= files_with(doc, "AS4")


def test_directory_link_to_itself_does_not_hang(cli: Any, tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    _link(folder, "again", ".")
    code, doc = cli(folder)
    assert code in {0, 1, 3} and "again" in files_with(doc, "AS410")


def test_internal_symlink_to_hostile_blob(cli: Any, tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    (folder / "blob").write_bytes(hf.global_p0("os", "system"))
    _link(folder, "adapter_model.safetensors", "blob")
    code, doc = cli(folder)
    assert code == 1 and "blob" in files_with(doc, "AS43")


@pytest.mark.parametrize("name", ["adapter_model.bin", "adapter_model.safetensors",
                                  "adapter_config.json"])
def test_fifo_is_never_opened(tmp_path: Path, name: str) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    (folder / name).unlink(missing_ok=True)
    os.mkfifo(folder / name)
    proc = run_cli(folder, timeout=60)  # a read of the FIFO would block until the timeout
    doc = json.loads(proc.stdout)
    assert proc.returncode in HOSTILE_EXITS
    assert name in files_with(doc, "AS413") and name in skipped(doc)


def test_unix_socket_is_flagged(cli: Any, tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(folder / "sock"))
        code, doc = cli(folder)
    finally:
        sock.close()
    assert_hostile(code, doc, "AS4", "sock")


def test_deeply_nested_payload_is_found(cli: Any, tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    deep = folder.joinpath(*["d"] * 600)
    deep.mkdir(parents=True)
    (deep / "payload.bin").write_bytes(hf.global_p0("os", "system"))
    code, doc = cli(folder)
    rel = "/".join(["d"] * 600) + "/payload.bin"
    assert code == 1 and rel in files_with(doc, "AS430")


_NAMES = {
    "newline": b"evil\nname.bin",
    "escape": b"evil\x1b[31mred\x1b]0;pwned\x07.bin",
    "invalid_utf8": b"evil\xff\xfe.bin",
    "rich_markup": b"evil[bold]x[link=file:x]y.bin",
    "bidi": "evil\u202egnp.bin".encode(),
    "spaces_and_uri_chars": b"a b#c?d%zz:e.bin",
}


def test_hostile_file_names_in_every_format(tmp_path: Path) -> None:
    """Names are attacker-chosen bytes: every format must survive and stay inert."""
    folder = hf.adapter_with(tmp_path / "a")
    base = os.fsencode(folder)
    for raw in _NAMES.values():
        with open(base + b"/" + raw, "wb") as fh:
            fh.write(hf.global_p0("os", "system"))
    # a '[/]' closing tag needs a '/': put it across a folder boundary
    os.makedirs(base + b"/x[")
    with open(base + b"/x[/].bin", "wb") as fh:
        fh.write(hf.global_p0("os", "system"))
    expected = {os.fsdecode(raw) for raw in _NAMES.values()} | {"x[/].bin"}
    proc = run_cli(folder)
    assert proc.returncode == 1
    assert expected <= files_with(json.loads(proc.stdout), "AS430")
    sarif = run_cli(folder, fmt="sarif")
    assert sarif.returncode == 1
    uris = [loc["physicalLocation"]["artifactLocation"]["uri"]
            for r in json.loads(sarif.stdout)["runs"][0]["results"] for loc in r["locations"]]
    assert all(u.isascii() and u.isprintable() and not set(u) & set(" #?") for u in uris), uris
    assert "evil%FF%FE.bin" in uris  # the original bytes, percent-encoded
    text = run_cli(folder, fmt="text")
    assert text.returncode == 1 and "FAIL" in text.stdout
    assert not set(text.stdout) & {"\x1b", "\x07", "\u202e"}
    out = tmp_path / "report.txt"
    assert run_cli(folder, "--output", str(out), fmt="text").returncode == 1
    assert "FAIL" in out.read_text("utf-8")


def _deny_reads(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """root ignores chmod 000: make every open of `name` fail as it would for a normal user."""
    def blocked(path: object) -> bool:
        try:
            return os.fsdecode(path).endswith(name)  # type: ignore[arg-type]
        except TypeError:
            return False

    real_open, real_os_open = builtins.open, os.open

    def fake_open(file: Any, *a: Any, **k: Any) -> Any:
        if blocked(file):
            raise PermissionError(13, "Permission denied", os.fsdecode(file))
        return real_open(file, *a, **k)

    def fake_os_open(path: Any, *a: Any, **k: Any) -> int:
        if blocked(path):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_os_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)


@pytest.mark.parametrize("name", ["adapter_model.safetensors", "adapter_config.json",
                                  "training_args.bin"])
def test_unreadable_file_makes_the_scan_incomplete(cli: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   name: str) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    (folder / "training_args.bin").write_bytes(hf.global_p0("builtins", "dict"))
    (folder / name).chmod(0)
    if os.geteuid() == 0:
        _deny_reads(monkeypatch, name)
    code, doc = cli(folder)
    assert code in HOSTILE_EXITS and not doc["complete"]
    assert name in skipped(doc) | {e["path"] for e in doc["errors"]}


def test_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    proc = run_cli(folder / "adapter_model.safetensors")
    assert proc.returncode in {2, 3} and "not a folder" in proc.stderr


@pytest.mark.parametrize("content", [{}, {"README.md": b"hi"}, {"adapter_config.json": None}])
def test_no_adapter_is_never_a_pass(cli: Any, tmp_path: Path,
                                    content: dict[str, bytes | None]) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    for name, data in content.items():
        if data is None:
            hf.write_config(folder)
        else:
            (folder / name).write_bytes(data)
    code, doc = cli(folder)
    assert code == 3 and "." in skipped(doc)


# --- size and count bounds ----------------------------------------------------------------------

def _sparse(path: Path, size: int, head: bytes = b"") -> None:
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)


@pytest.mark.parametrize("name", ["adapter_model.safetensors", "adapter_model.bin"])
def test_50gb_sparse_file_is_set_aside_quickly(tmp_path: Path, name: str) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    (folder / "adapter_model.safetensors").unlink()
    # a header that declares one 50 GB tensor, so a data scan would read every byte
    n = (50 * 1024**3) // 4 - 64
    head = raw_safetensors({"w": {"dtype": "F32", "shape": [n],
                                     "data_offsets": [0, n * 4]}})
    _sparse(folder / name, len(head) + n * 4, head)
    proc = run_cli(folder, timeout=60)  # hashing 50 GB takes minutes: the limit must apply
    doc = json.loads(proc.stdout)
    assert proc.returncode in HOSTILE_EXITS and name in skipped(doc)
    assert name in files_with(doc, "AS414")
    rec = {f["path"]: f for f in doc["subject"]["files"]}[name]
    assert rec["sha256"] is None and rec["size"] == len(head) + n * 4


def test_max_file_size_option_sets_files_aside(cli: Any, tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    size = (folder / "adapter_model.safetensors").stat().st_size
    code, doc = cli(folder, "--max-file-size", str(size - 1))
    assert code == 3 and "adapter_model.safetensors" in skipped(doc)
    code, doc = cli(folder, "--max-file-size", str(size))
    assert code == 0


def _many_files(folder: Path, n: int) -> None:
    for i in range(n):
        (folder / f"f{i:05d}.txt").write_bytes(b"x")


def test_more_entries_than_max_files_is_incomplete(cli: Any, tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    _many_files(folder, 49)
    code, doc = cli(folder, "--max-files", "51")
    assert code == 0, (rule_ids(doc), doc["skipped"])
    (folder / "one_more.txt").write_bytes(b"x")
    code, doc = cli(folder, "--max-files", "51")
    assert code == 3 and "." in skipped(doc)


@pytest.mark.slow
def test_ten_thousand_files_at_the_default_limit(cli: Any, tmp_path: Path) -> None:
    folder = hf.adapter_with(tmp_path / "a")
    _many_files(folder, 10_000 - 1)  # 10,001 entries with the adapter's two files
    code, doc = cli(folder)
    assert code == 3 and "." in skipped(doc)

