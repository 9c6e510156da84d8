"""adapter_config.json and the other config and metadata files a scan reads (tokenizer files,
chat templates, the model card's base_model), beside a small valid PEFT adapter; and what is read
from a base model's folder (`--base auto`'s config, the vocabulary of the trigger-token check),
which a hostile adapter chooses by naming its base. The first byte of the input picks the file;
the rest is its content."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

from adapterscan.fetch.base_model import BaseNotFound, configured_base
from adapterscan.fetch.hub_meta import base_model_hint
from adapterscan.fetch.local import LocalFetcher
from adapterscan.source import FetchLimits
from adapterscan.static.config.adapter_config import AdapterConfigResult, analyze_adapter_config
from adapterscan.static.formats.metadata import check_metadata
from adapterscan.static.formats.readers import read_adapters
from adapterscan.static.inventory.inventory import build_inventory
from adapterscan.static.layout import SafetensorsHeader
from adapterscan.static.model import FileClass
from adapterscan.static.safetensors.header import read_header_file
from adapterscan.static.weights.trigger_tokens import load_vocab
from benchmarks.fuzz.common import LIMITS, check_report, emitter, write

ALLOWED: tuple[type[BaseException], ...] = ()
MAX_LEN = 8192
FILES = ("adapter_config.json", "tokenizer_config.json", "added_tokens.json", "tokenizer.json",
         "chat_template.jinja", "chat_template.json", "README.md", "sub/adapter_config.json")
WEIGHTS = "adapter_model.safetensors"  # a small PEFT adapter, written by seeds.py into assets/


def run_config_stage(folder: Path) -> None:
    """The stages that read config and metadata, in the static stage's order."""
    emit = emitter()
    src = LocalFetcher(folder, FetchLimits()).fetch(emit)
    inv = build_inventory(src, emit, LIMITS)
    headers: dict[str, SafetensorsHeader] = {}
    for item in inv.of_class(FileClass.SAFETENSORS):
        h = read_header_file(folder / item.path, item.path, emit, LIMITS)
        if h is not None:
            headers[item.path] = h
    result = analyze_adapter_config(folder, inv, headers, emit, LIMITS)
    configs = result.configs if isinstance(result, AdapterConfigResult) else {}
    model = read_adapters(folder, headers, {}, configs)
    check_metadata(model, configs, emit)
    base_model_hint(folder, emit)
    check_report(emit)


def run_base_readers(folder: Path) -> None:
    """The folder read as a base model's: BaseNotFound is --base auto's documented refusal."""
    with contextlib.suppress(BaseNotFound):
        configured_base(folder)
    load_vocab(folder)


def prepare(scratch: Path, assets: Path) -> Callable[[bytes], None]:
    shutil.rmtree(scratch, ignore_errors=True)
    write(scratch, WEIGHTS, (assets / WEIGHTS).read_bytes())

    def target(raw: bytes) -> None:
        if not raw:
            return
        for rel in FILES:  # one file at a time beside the weights (no rmtree: it is slow)
            (scratch / rel).unlink(missing_ok=True)
        write(scratch, FILES[raw[0] % len(FILES)], raw[1:])
        run_config_stage(scratch)
        run_base_readers(scratch)
    return target
