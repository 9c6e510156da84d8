"""libFuzzer dictionaries of each format's tokens, taken from the parsers' own tables (so they
follow the code): pickle opcodes, safetensors dtype names, GGUF value types and keys, JSON keys
of the configs, zip and npy magics."""

from __future__ import annotations

import pickletools
import struct

from adapterscan.static.formats.gguf import KEPT_STRING
from adapterscan.static.safetensors.header import DTYPE_BITS

_JSON = (b"{", b"}", b"[", b"]", b'":', b'","', b"null", b"true", b"false", b"-1",
         b"1e309", b"NaN", b"Infinity", b"\\u0000", b"\\ud800", b"18446744073709551616")
_ST_KEYS = (b'"dtype"', b'"shape"', b'"data_offsets"', b'"__metadata__"', b'"format":"pt"')
_CONFIG_KEYS = (b'"peft_type"', b'"LORA"', b'"r"', b'"lora_alpha"', b'"target_modules"',
                b'"rank_pattern"', b'"alpha_pattern"', b'"modules_to_save"',
                b'"layers_to_transform"', b'"base_model_name_or_path"', b'"use_dora"',
                b'"lora_parameters"', b'"fine_tune_type"', b'"chat_template"',
                b'"added_tokens_decoder"', b'"num_virtual_tokens"', b'"token_dim"',
                b'"task_type"', b"base_model:", b"---\n")
_NAMES = (b"lora_A.weight", b"lora_B.weight", b"lora_down.weight", b"lora_up.weight",
          b".alpha", b"hada_w1_a", b"hada_w2_b", b"lokr_w1", b"lokr_w2_a", b".diff",
          b".on_input", b"lora_magnitude_vector", b"lora_unet_", b"lora_te1_", b"unet.",
          b"text_encoder.", b".lora_a", b".lora_b", b"base_model.model.", b"ss_network_dim",
          b"ss_tag_frequency", b"modelspec.")
_PROVENANCE = (b'"mediaType"', b'"application/vnd.dev.sigstore.bundle.v0.3+json"',
               b'"dsseEnvelope"', b'"payloadType"', b'"application/vnd.in-toto+json"',
               b'"signatures"', b'"sig"', b'"keyid"', b'"verificationMaterial"',
               b'"publicKey"', b'"hint"', b'"_type"', b'"subject"', b'"digest"',
               b'"sha256"', b'"predicateType"', b'"predicate"', b'"resources"',
               b'"serialization"', b'"attestedAt"')
_HUB = (b'"event"', b'"repo"', b'"updatedRefs"', b'"newSha"', b'"headSha"', b'"type"',
        b'"model"', b'"private"', b'"siblings"', b'"rfilename"', b'"blobId"', b'"lfs"',
        b'"securityRepoStatus"', b'"filesWithIssues"', b'"scansDone"', b'"tree"', b'"oid"',
        b'"size"', b'"path"', b'"file"', b'"directory"')
_ZIP = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07",
        b"archive/data.pkl", b"archive/byteorder", b"archive/version", b"little")
_NPY = (b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00", b"'descr':", b"'fortran_order':",
        b"'shape':", b"'|O'", b"'<f4'", b"True", b"False", b"(1,)")


def _pickle() -> list[bytes]:
    out = [op.code.encode("latin-1") for op in pickletools.opcodes]
    out += [b"cos\nsystem\n", b"torch._utils\n_rebuild_tensor_v2\n", b"collections\nOrderedDict\n",
            b"\x8c\x05torch", b"\x95", b"\x80\x04"]
    return out


def _gguf() -> list[bytes]:
    out = [b"GGUF", struct.pack("<I", 3), struct.pack("<I", 2)]
    out += [struct.pack("<I", t) for t in range(16)]
    out += [struct.pack("<Q", n) for n in (0, 1, KEPT_STRING, 2**32, 2**63)]
    out += [b"general.type", b"adapter", b"general.alignment", b"adapter.lora.alpha",
            b"tokenizer.chat_template", b"tokenizer.ggml.tokens", b"blk.0.attn_q.weight.lora_a"]
    return out


def _entries(tokens: list[bytes]) -> str:
    return "".join('"' + "".join(f"\\x{b:02x}" for b in t) + '"\n' for t in tokens)


def dictionary(name: str) -> str:
    """The dictionary of harness `name`, in libFuzzer's format."""
    json_tokens = list(_JSON)
    dtypes = [f'"{d}"'.encode() for d in DTYPE_BITS]
    by_name: dict[str, list[bytes]] = {
        "safetensors": json_tokens + dtypes + list(_ST_KEYS) + list(_NAMES[:4]),
        "names": json_tokens + dtypes + list(_ST_KEYS) + list(_NAMES),
        "gguf": _gguf(),
        "pickle_raw": _pickle(),
        "pickle_torch": _pickle() + list(_ZIP),
        "npy": _pickle() + list(_NPY),
        "npz": _pickle() + list(_NPY) + list(_ZIP),
        "zip": list(_ZIP),
        "config": json_tokens + list(_CONFIG_KEYS),
        "dsse": json_tokens + list(_PROVENANCE),
        "webhook": json_tokens + list(_HUB),
        "hub": json_tokens + list(_HUB) + list(_ST_KEYS),
    }
    return _entries(by_name[name])
