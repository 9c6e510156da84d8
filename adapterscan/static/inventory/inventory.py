"""Inventory analyzer: every entry classified by name and by content, and accounted for.

Content wins over the name for the classes that execute or hide things (pickle, zip, archive,
executable): a pickle is a pickle whatever it is called, and the disagreement is a finding.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections import defaultdict
from collections.abc import Collection, Mapping

from adapterscan.emit import Emitter
from adapterscan.file_kinds import PICKLE_EXT, ext_of
from adapterscan.findings import JSONValue
from adapterscan.source import Entry, EntryType, FetchedSource
from adapterscan.static.inventory import sniff as sn
from adapterscan.static.inventory import templates
from adapterscan.static.inventory.checks import (
    ARCHIVE,
    CHAT_TEMPLATE,
    CHAT_TEMPLATE_LAYOUT,
    CODE_FILE,
    CONTENT_MISMATCH,
    EXECUTABLE,
    MANY_FILES,
    OVERSIZED_FILE,
    PICKLE_BESIDE_SAFETENSORS,
    PICKLE_FILE,
    PICKLE_ONLY_WEIGHTS,
    PICKLE_ONLY_WEIGHTS_PROVEN,
    SPECIAL_FILE,
    SYMLINK,
    SYMLINK_ESCAPE,
    TOKENIZER_FILES,
    UNKNOWN_FILE,
    UNSAFE_PATH,
)
from adapterscan.static.limits import StaticLimits
from adapterscan.static.model import FileClass, Inventory, InventoryItem

_TRAINER_STATE = re.compile(r"^(training_args\.bin|optimizer\.pt|scheduler\.pt|scaler\.pt|"
                            r"rng_state.*\.pth)$")
_PEFT_PICKLE = "adapter_model.bin"
_PEFT_SAFE = "adapter_model.safetensors"
# Content kind -> the classes whose names may legitimately hold it (None = no known name).
_ALLOWED_NAMES: Mapping[str, frozenset[FileClass | None]] = {
    "pickle": frozenset({FileClass.PICKLE, None}),
    "zip": frozenset({FileClass.PICKLE, FileClass.ZIP, None}),
    "archive": frozenset({FileClass.ARCHIVE, None}),
    "executable": frozenset({FileClass.EXECUTABLE, None}),
    "script": frozenset({FileClass.CODE, FileClass.EXECUTABLE, None}),
    "safetensors": frozenset({FileClass.SAFETENSORS, None}),
    "gguf": frozenset({FileClass.GGUF, None}),
    "npy": frozenset({FileClass.OTHER_DATA, FileClass.PICKLE, None}),
}
# NumPy arrays go to the pickle analyzer: object arrays are pickles, numeric ones are checked.
_BY_CONTENT = {"pickle": FileClass.PICKLE, "zip": FileClass.ZIP, "archive": FileClass.ARCHIVE,
               "executable": FileClass.EXECUTABLE, "safetensors": FileClass.SAFETENSORS,
               "gguf": FileClass.GGUF, "npy": FileClass.PICKLE}


def build_inventory(src: FetchedSource, emit: Emitter, limits: StaticLimits) -> Inventory:
    items: list[InventoryItem] = []
    max_files = emit.num(MANY_FILES, "max_files")
    if len(src.entries) > max_files:
        emit.emit(MANY_FILES, f"{len(src.entries)} entries; adapters need a handful",
                  evidence={"entries": len(src.entries), "threshold": max_files})
    for e in src.entries:
        _check_path(e.path, emit)
        items.append(_classify(src, e, emit, limits))
    inv = Inventory(tuple(items))
    _pickles_vs_safetensors(inv, emit)
    _tokenizer_and_templates(src, inv, emit, limits)
    return inv


def _check_path(path: str, emit: Emitter) -> None:
    reasons = []
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        reasons.append("absolute path")
    if ".." in path.split("/"):
        reasons.append("'..' component")
    if "\\" in path:
        reasons.append("backslash")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        reasons.append("control character")
    limit = emit.num(UNSAFE_PATH, "max_path_length")
    if len(path) > limit:
        reasons.append(f"{len(path)} characters (over {limit:.0f})")
    if reasons:
        emit.emit(UNSAFE_PATH, f"unsafe path: {', '.join(reasons)}",
                  file=path, evidence={"reasons": list[JSONValue](reasons), "path": repr(path)})


def _classify(src: FetchedSource, e: Entry, emit: Emitter, limits: StaticLimits
              ) -> InventoryItem:
    if e.type is EntryType.SYMLINK:
        _symlink(e, emit)
        return InventoryItem(e.path, 0, FileClass.SYMLINK, f"symlink to {e.link_target!r}")
    if e.type is EntryType.OTHER:
        if posixpath.basename(e.path) == ".git":
            return InventoryItem(e.path, 0, FileClass.OTHER_DATA,
                                 "version-control folder: never read by loaders, not scanned")
        emit.emit(SPECIAL_FILE, "device, fifo or socket: never read", file=e.path)
        emit.skip(e.path, "special file (device, fifo or socket) not read")
        return InventoryItem(e.path, 0, FileClass.SPECIAL, "not a regular file")
    max_bytes = emit.num(OVERSIZED_FILE, "max_bytes")
    if e.size > max_bytes:
        emit.emit(OVERSIZED_FILE, f"{e.size} bytes, over {max_bytes:.0f}",
                  file=e.path, evidence={"size": e.size, "threshold": max_bytes})
    name_cls, name_reason = sn.by_name(e.path)
    if e.path in src.remote_only:
        cls = name_cls or FileClass.OTHER_DATA
        item = InventoryItem(e.path, e.size, cls, f"{name_reason}; not downloaded, classified "
                             "by name only")
    else:
        try:
            head = sn.read_head(src.root, e.path, limits.max_sniff_bytes)
        except OSError as exc:
            emit.skip(e.path, f"cannot read for classification: {exc.strerror or exc}")
            return InventoryItem(e.path, e.size, name_cls or FileClass.OTHER_DATA,
                                 f"{name_reason}; unreadable")
        item = _decide(e, name_cls, name_reason, head, emit)
    _class_findings(item, name_cls, emit)
    return item


def _decide(e: Entry, name_cls: FileClass | None, name_reason: str, head: bytes,
            emit: Emitter) -> InventoryItem:
    kind, detail = sn.content_kind(head, e.size)
    allowed = _ALLOWED_NAMES.get(kind)
    if allowed is not None and name_cls not in allowed:
        emit.emit(CONTENT_MISMATCH,
                  f"named as {name_cls.value if name_cls else 'unknown'} ({name_reason}) but "
                  f"the content is {kind} ({detail})", file=e.path,
                  evidence={"extension": ext_of(e.path), "content": kind, "detail": detail,
                            "first_bytes": head[:16].hex()})
    if kind == "script":
        cls = FileClass.CODE if name_cls is FileClass.CODE else FileClass.EXECUTABLE
        return InventoryItem(e.path, e.size, cls, f"{name_reason}; {detail}")
    if kind in _BY_CONTENT:
        return InventoryItem(e.path, e.size, _BY_CONTENT[kind], f"{name_reason}; {detail}")
    cls = name_cls or FileClass.OTHER_DATA
    return InventoryItem(e.path, e.size, cls, f"{name_reason}; content {kind} ({detail})")


def _class_findings(item: InventoryItem, name_cls: FileClass | None, emit: Emitter) -> None:
    cls = item.file_class
    ev: dict[str, JSONValue] = {"class": cls.value, "reason": item.reason, "size": item.size}
    if cls in (FileClass.PICKLE, FileClass.ZIP):
        emit.emit(PICKLE_FILE, f"{cls.value} file: {item.reason}", file=item.path,
                  evidence=ev)
    elif cls is FileClass.CODE:
        emit.emit(CODE_FILE, f"code in an adapter repository: {item.reason}",
                  file=item.path, evidence=ev)
    elif cls is FileClass.EXECUTABLE:
        emit.emit(EXECUTABLE, f"executable or native library: {item.reason}",
                  file=item.path, evidence=ev)
    elif cls is FileClass.ARCHIVE:
        emit.emit(ARCHIVE, f"archive not unpacked: {item.reason}", file=item.path,
                  evidence=ev)
        emit.skip(item.path, "archive content not scanned")
    elif cls is FileClass.OTHER_DATA and name_cls is None:
        emit.emit(UNKNOWN_FILE, f"unclassified file: {item.reason}", file=item.path,
                  evidence=ev)


def _symlink(e: Entry, emit: Emitter) -> None:
    target = e.link_target
    ev: dict[str, JSONValue] = {"target": target}
    if target is None:
        emit.emit(SYMLINK, "symlink with an unreadable target", file=e.path,
                  evidence=ev)
        return
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(e.path), target))
    if posixpath.isabs(target) or re.match(r"^[A-Za-z]:", target) or resolved == ".." \
            or resolved.startswith("../"):
        emit.emit(SYMLINK_ESCAPE, f"symlink leaves the folder: -> {target!r}",
                  file=e.path, evidence={"target": target, "resolved": resolved})
        emit.skip(e.path, "symlink target outside the folder not analysed")
    else:
        emit.emit(SYMLINK, f"symlink -> {target!r} (followed by loaders, not by "
                  "the scanner)", file=e.path, evidence={"target": target, "resolved": resolved})


def _pickles_vs_safetensors(inv: Inventory, emit: Emitter) -> None:
    by_dir: dict[str, list[InventoryItem]] = defaultdict(list)
    for item in inv.items:
        by_dir[posixpath.dirname(item.path)].append(item)
    for entries in by_dir.values():
        safes = [i.path for i in entries if i.file_class is FileClass.SAFETENSORS]
        weights = [i for i in entries if i.file_class in (FileClass.PICKLE, FileClass.ZIP)
                   and ext_of(i.path) in PICKLE_EXT
                   and not _TRAINER_STATE.match(posixpath.basename(i.path))]
        if safes:
            for w in weights:
                emit.emit(PICKLE_BESIDE_SAFETENSORS,
                          f"pickle weights beside {len(safes)} safetensors file(s): loaders "
                          "other than PEFT may pick the pickle", file=w.path,
                          evidence={"safetensors": list[JSONValue](safes[:10])})


def pickle_only_weights(inv: Inventory, emit: Emitter, proven: Collection[str]) -> None:
    """AS403 / AS449 for each adapter_model.bin with no adapter_model.safetensors beside it,
    once the pickle analyzer has walked it: `proven` holds the files whose walk showed only
    tensors and allowlisted containers."""
    by_dir: dict[str, dict[str, InventoryItem]] = defaultdict(dict)
    for item in inv.items:
        by_dir[posixpath.dirname(item.path)][posixpath.basename(item.path)] = item
    for folder, names in by_dir.items():
        peft = names.get(_PEFT_PICKLE)
        if peft is None or peft.file_class not in (FileClass.PICKLE, FileClass.ZIP) \
                or _PEFT_SAFE in names:
            continue
        if peft.path in proven:
            emit.emit(PICKLE_ONLY_WEIGHTS_PROVEN,
                      f"{_PEFT_PICKLE} without {_PEFT_SAFE}: PEFT loads it with "
                      "torch.load(weights_only=True); its pickle holds only tensors and "
                      "allowlisted containers, so loading it runs no code of the file's choosing",
                      file=peft.path, evidence={"folder": folder or "."})
        else:
            emit.emit(PICKLE_ONLY_WEIGHTS,
                      f"{_PEFT_PICKLE} without {_PEFT_SAFE}: PEFT falls back to "
                      "torch.load(weights_only=True) (CVE-2025-32434, CVE-2026-24747), and the "
                      "pickle was not proven to hold only tensors: code may run at load",
                      file=peft.path, evidence={"folder": folder or "."})


def _read_json(src: FetchedSource, rel: str, limits: StaticLimits) -> object | str:
    """Parsed JSON, or a string saying why not."""
    if rel in src.remote_only:
        return "not downloaded"
    try:
        raw = sn.read_head(src.root, rel, limits.max_json_bytes + 1)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if len(raw) > limits.max_json_bytes:
        return f"over {limits.max_json_bytes} bytes, not parsed"
    try:
        data: object = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return f"invalid JSON: {type(exc).__name__}"
    return data


def _tokenizer_and_templates(src: FetchedSource, inv: Inventory, emit: Emitter,
                             limits: StaticLimits) -> None:
    toks = inv.of_class(FileClass.TOKENIZER)
    if toks:
        added: dict[str, JSONValue] = {}
        for item in toks:
            base = posixpath.basename(item.path).lower()
            if base not in ("added_tokens.json", "tokenizer_config.json", "tokenizer.json"):
                continue
            data = _read_json(src, item.path, limits)
            if isinstance(data, str):
                added[item.path] = data
            elif base == "added_tokens.json" and isinstance(data, dict):
                added[item.path] = len(data)
            elif base == "tokenizer.json" and isinstance(data, dict) \
                    and isinstance(data.get("added_tokens"), list):
                added[item.path] = len(data["added_tokens"])
            elif base == "tokenizer_config.json" and isinstance(data, dict):
                if isinstance(data.get("added_tokens_decoder"), dict):
                    added[item.path] = len(data["added_tokens_decoder"])
                _template_in_config(item.path, data, emit)
        emit.emit(TOKENIZER_FILES,
                  f"{len(toks)} tokenizer file(s) ship with the adapter and replace the base "
                  "model's tokenizer", file=toks[0].path,
                  evidence={"files": list[JSONValue]([i.path for i in toks][:20]),
                            "added_tokens": added})
    for item in inv.of_class(FileClass.CHAT_TEMPLATE):
        data = _read_json(src, item.path, limits) if item.path.endswith(".json") else None
        if isinstance(data, dict):
            _template_in_config(item.path, data, emit)
            continue
        text = _read_text(src, item.path, limits)
        _emit_template(item.path, None, text, emit)


def _read_text(src: FetchedSource, rel: str, limits: StaticLimits) -> str | None:
    if rel in src.remote_only:
        return None
    try:
        raw = sn.read_head(src.root, rel, limits.max_json_bytes)
    except OSError:
        return None
    return raw.decode("utf-8", "replace")


def _template_in_config(path: str, data: Mapping[str, object], emit: Emitter) -> None:
    tpl = data.get("chat_template")
    if isinstance(tpl, str):
        _emit_template(path, "chat_template", tpl, emit)
    elif isinstance(tpl, list):
        for entry in tpl[:20]:
            if isinstance(entry, dict) and isinstance(entry.get("template"), str):
                _emit_template(path, f"chat_template[{entry.get('name')!s}]",
                               entry["template"], emit)


def _emit_template(path: str, key: str | None, text: str | None, emit: Emitter) -> None:
    ev: dict[str, JSONValue] = {"source": path}
    if text is None:  # not read: what it does is unknown
        emit.emit(CHAT_TEMPLATE, "chat template ships with the adapter (not read): "
                  "it decides the prompt the model sees", file=path, key=key, evidence=ev)
        return
    ev["length"] = len(text)
    ev["sha256"] = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    markers = sorted({m.group(0) for m in templates.MARKERS.finditer(text)})
    ev["markers"] = list[JSONValue](markers[:20])
    why = templates.concerns(text)
    if why:
        ev["concerns"] = list[JSONValue](why)
        emit.emit(CHAT_TEMPLATE, "chat template ships with the adapter and does more "
                  f"than lay out turns ({'; '.join(why)}): it decides the prompt the model sees",
                  file=path, key=key, evidence=ev)
    else:
        emit.emit(CHAT_TEMPLATE_LAYOUT, "chat template ships with the adapter: it "
                  "only lays out the turns (no code markers, URL, shell command or injected "
                  "prose)", file=path, key=key, evidence=ev)
