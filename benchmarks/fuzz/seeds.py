"""Seed corpora and assets, built by the tests' own fixture builders (never committed):
`python -m benchmarks.fuzz seeds [WORKDIR]` writes WORKDIR/seeds/NAME/*, WORKDIR/NAME.dict and
WORKDIR/assets/."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from benchmarks.fuzz import tokens
from tests import factories as F
from tests import hostile_factories as H
from tests.static import factories_formats as FF
from tests.static import factories_pickle as FP
from tests.static import factories_pickle_calls as FPC
from tests.static import factories_torch_archive as FT

Seeds = dict[str, bytes]


# JSON nested past the decoder's recursion limit: the hostile shape that a peer scanner dies on
# (an uncaught RecursionError), and one that mutation alone rarely builds.
DEEP_JSON = (b"[" * 2000, b'{"a":' * 1000)


def _small_lora() -> dict[str, np.ndarray]:
    return F.lora_tensors(layers=1, hidden=8, r=2)


def safetensors_seeds() -> Seeds:
    out = {f"hostile-{k}": v for k, v in H.hostile_safetensors().items() if len(v) < 1 << 16}
    out["peft"] = F.safetensors_bytes(_small_lora(), {"format": "pt"})
    out.update({f"deep-{i}": F.raw_safetensors(d) for i, d in enumerate(DEEP_JSON)})
    out["bf16-meta"] = F.safetensors_bytes({"w": np.ones((2, 2), np.float16)},
                                           {"ss_network_dim": "4"})
    return out


def names_seeds() -> Seeds:
    lora = FF.llama_factors(layers=1, hidden=8, r=2, modules=("q_proj", "v_proj"))
    files = {
        "peft": F.safetensors_bytes(FF.peft_tensors(lora)),
        "kohya": F.safetensors_bytes(FF.kohya_lora(r=2, dim=8, blocks=1, transformers=1),
                                     FF.KOHYA_META),
        "lycoris": F.safetensors_bytes(FF.lycoris_mixed(dim=8)),
        "diffusers": F.safetensors_bytes(FF.diffusers_lora(dim=8, r=2)),
        "mlx": F.safetensors_bytes({f"{t}.lora_{x}": np.ascontiguousarray(m.T)
                                    for t, (a, b) in lora.items()
                                    for x, m in (("a", a), ("b", b))}),
    }
    files.update({f"deep{i}": F.raw_safetensors(d) for i, d in enumerate(DEEP_JSON)})
    # The first byte picks the config: 0 none, 1 mlx.json, 2 peft.json (sorted names).
    return {f"{name}-{c}": bytes([c]) + data for name, data in files.items() for c in range(3)}


def _gguf(tmp: Path, name: str, **kw: object) -> bytes:
    lora = FF.llama_factors(layers=1, hidden=8, r=2, modules=("q_proj", "v_proj"))
    return FF.write_gguf(tmp / name, lora, **kw).read_bytes()  # type: ignore[arg-type]


def gguf_seeds() -> Seeds:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        return {"lora": _gguf(tmp, "a.gguf"), "tokenizer": _gguf(tmp, "b.gguf", tokenizer=True),
                "f16": _gguf(tmp, "c.gguf", dtype=np.float16)}


def pickle_raw_seeds() -> Seeds:
    out = {name: fn() for name, fn in (
        ("os-system", FP.os_system_p0), ("inst", FP.inst_p0),
        ("memo-confusion", FP.memo_confusion), ("memoize-index", FP.memoize_index_trick),
        ("stack-global", FP.stack_global_computed), ("nested-loads", FP.nested_pickle_loads),
        ("nested-codecs", FP.nested_hidden_in_codecs), ("unknown", FP.unknown_global),
        ("truncated", FP.truncated_after_payload))}
    for fn in (FPC.reduce_p0, FPC.reduce_stack_global, FPC.newobj, FPC.newobj_ex, FPC.inst,
               FPC.obj, FPC.memo_indirection, FPC.passed_to_reconstructor,
               FPC.shared_list_to_rebuild, FPC.build_state, FPC.nested_bytes):
        out[fn.__name__] = fn("os", "system")
    out["torch-table"] = FT.data_pkl(FT.lora_entries(hidden=8, r=2)[0])
    return out


def pickle_torch_seeds() -> Seeds:
    entries, storages = FT.lora_entries(hidden=8, r=2)
    return {"lora": FT.archive(entries, storages),
            "deflated": FT.archive(entries, storages, compress=8),
            "malicious": FP.malicious_archive(),
            "hostile-zip": H.torch_zip(H.stack_global_p4("os", "system"))}


def npy_seeds() -> Seeds:
    return {"object": FPC.npy_object(FP.os_system_p0()),
            "object-v2": FPC.npy_object(FP.os_system_p0(), (2, 0)),
            "f4": FPC.npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
                              b"\0" * 16),
            "structured": FPC.npy_raw(
                "{'descr': [('a', '<i4'), ('b', 'O')], 'fortran_order': True, 'shape': (1,), }",
                FP.os_system_p0())}


def npz_seeds() -> Seeds:
    arrays = npy_seeds()
    return {"mixed": FPC.zipped({f"{k}.npy": v for k, v in arrays.items()}),
            "nested": FPC.zipped({"inner.npz": FPC.zipped({"x.npy": arrays["object"]})}),
            "stored": FP.torch_like_zip({"a.npy": arrays["f4"], "b.npy": arrays["object"]})}


def zip_seeds() -> Seeds:
    out = {**pickle_torch_seeds(), **npz_seeds()}
    out["crc"] = FP.patch_headers(FP.malicious_archive(), crc=0)
    out["encrypted"] = FP.patch_headers(FP.malicious_archive(), flag_or=1)
    return out


def config_seeds() -> Seeds:
    from benchmarks.fuzz.h_config import FILES

    docs: dict[str, bytes] = {
        "peft": json.dumps(F.adapter_config()).encode(),
        "rank-pattern": json.dumps(F.adapter_config(
            rank_pattern={"q_proj": 8}, alpha_pattern={"v_proj": 2},
            target_modules="(.*)proj$", layers_to_transform=[0])).encode(),
        "mlx": json.dumps(FF.mlx_config(2, 20.0)).encode(),
        "prompt": json.dumps({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 8,
                              "token_dim": 64, "task_type": "CAUSAL_LM"}).encode(),
        "tokenizer": json.dumps({"chat_template": "{{ messages }}",
                                 "added_tokens_decoder": {"1": {"content": "<s>"}}}).encode(),
        "card": b"---\nbase_model: org/other\ntags: [lora]\n---\n# card\n",
        **{f"deep{i}": d for i, d in enumerate(DEEP_JSON)},
    }
    return {f"{k}-{i}": bytes([i]) + v for k, v in docs.items() for i in range(len(FILES))}


def _signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def dsse_seeds(assets: Path) -> Seeds:
    from adapterscan.hashing import sha256_file
    from adapterscan.provenance.model_signing import model_sig_bundle
    from adapterscan.provenance.statement import build_statement, statement_bytes
    from benchmarks.fuzz.h_dsse import ADAPTER, KEY
    from tests.provenance.helpers import report_for, signed

    key = _signing_key()
    (assets / KEY).write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                 NoEncryption()))
    folder = F.write_adapter(assets / ADAPTER, tensors=_small_lora())
    report = report_for(folder)
    now = dt.datetime.now(dt.UTC)
    statement = statement_bytes(build_statement(report, now=now))
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir())}
    return {"bundle": b"\0" + signed(report, key, now=now),
            "statement": b"\1" + statement,
            "model-sig": b"\2" + json.dumps(model_sig_bundle(files, "adapter", key)).encode(),
            **{f"deep{i}-{m}": bytes([m]) + d for i, d in enumerate(DEEP_JSON) for m in range(3)}}


def webhook_seeds() -> Seeds:
    sha = "a" * 40
    return {**{f"deep{i}": d for i, d in enumerate(DEEP_JSON)}, "push": json.dumps({
        "event": {"action": "update", "scope": "repo.content"},
        "repo": {"type": "model", "name": "org/lora", "private": False, "headSha": sha},
        "updatedRefs": [{"ref": "refs/heads/main", "oldSha": "b" * 40, "newSha": sha}]}).encode(),
        "head": json.dumps({"event": {"action": "create", "scope": "repo"},
                            "repo": {"type": "model", "name": "o/n", "headSha": sha}}).encode()}


def hub_seeds() -> Seeds:
    sha = "c" * 64
    listing = {
        "info": {"id": "org/lora", "sha": "a" * 40, "securityRepoStatus": {
            "scansDone": True, "filesWithIssues": [{"path": "x.bin", "level": "unsafe"}]},
            "siblings": [{"rfilename": "adapter_model.safetensors", "size": 10, "blobId": "b",
                          "lfs": {"size": 10, "sha256": sha, "pointerSize": 130}},
                         {"rfilename": "adapter_config.json", "size": 3, "blobId": "c"}]},
        "tree": [{"type": "file", "path": "adapter_model.safetensors", "size": 10, "oid": "b",
                  "lfs": {"size": 10, "oid": sha, "pointerSize": 130}},
                 {"type": "file", "path": "adapter_config.json", "size": 4, "oid": "d"},
                 {"type": "directory", "path": "sub", "oid": "e"}]}
    return {"listing": json.dumps(listing).encode(),
            **{f"deep{i}": b'{"info":' + d for i, d in enumerate(DEEP_JSON)},
            "triage": b"\0" + F.safetensors_bytes(_small_lora())}


SEEDS: dict[str, Callable[[], Seeds]] = {
    "safetensors": safetensors_seeds, "gguf": gguf_seeds, "pickle_raw": pickle_raw_seeds,
    "pickle_torch": pickle_torch_seeds, "npy": npy_seeds, "npz": npz_seeds, "zip": zip_seeds,
    "config": config_seeds, "names": names_seeds, "webhook": webhook_seeds, "hub": hub_seeds,
}
HARNESSES = (*SEEDS, "dsse")


def write_assets(assets: Path) -> None:
    (assets / "configs").mkdir(parents=True, exist_ok=True)
    (assets / "configs" / "mlx.json").write_text(json.dumps(FF.mlx_config(2, 20.0)))
    (assets / "configs" / "peft.json").write_text(json.dumps(F.adapter_config(r=2)))
    (assets / "adapter_model.safetensors").write_bytes(F.safetensors_bytes(_small_lora()))


def build(workdir: Path, names: tuple[str, ...] = HARNESSES) -> None:
    """Seeds, dictionaries and assets for `names` (rebuilt each time: seconds)."""
    assets = workdir / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    write_assets(assets)
    for name in names:
        seeds = dsse_seeds(assets) if name == "dsse" else SEEDS[name]()
        folder = workdir / "seeds" / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for key, data in seeds.items():
            (folder / key).write_bytes(data)
        (workdir / f"{name}.dict").write_text(tokens.dictionary(name))
