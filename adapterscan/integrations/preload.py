"""The pre-load guard: load a PEFT adapter only after its exact bytes were verified or scanned.

The adapter is copied into a fresh private temporary folder (mode 0700), the copy is hashed, the
digests are compared with the attestation (or with a scan), and PEFT loads from that copy: nothing
can change between the check and the load (no TOCTOU on the source folder or the Hub cache).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from adapterscan.errors import AdapterRejected, AdapterScanError, SigningError, UsageError
from adapterscan.extras import require_extra
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.integrations.service_client import ServiceAttestation, fetch_attestation
from adapterscan.pipeline import ScanOptions, scan
from adapterscan.policy.policy import Policy
from adapterscan.provenance.keys import PublicKeyLike, load_public_keys
from adapterscan.provenance.trust import Tree, TrustConfig
from adapterscan.provenance.verify import check_attestation, fetch_source
from adapterscan.report import Decision, ScanReport
from adapterscan.rules.loader import load_ruleset
from adapterscan.source import EntryType, FetchedSource

_CHUNK = 4 * 1024 * 1024
Loader = Callable[..., Any]
Attestation = Path | str | bytes | ServiceAttestation


def _copy_file(src: Path, dst: Path) -> str:
    """Copy without following links (O_NOFOLLOW) and hash the bytes actually written."""
    h = hashlib.sha256()
    fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AdapterRejected(f"{src} is not a regular file")
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            while chunk := os.read(fd, _CHUNK):
                h.update(chunk)
                os.write(out, chunk)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return h.hexdigest()


def private_copy(src: FetchedSource, dest: Path) -> Tree:
    """Copy every regular file of `src` into `dest`; the returned digests are of the copy."""
    files: dict[str, str] = {}
    others: list[str] = []
    for e in src.entries:
        if e.type is not EntryType.FILE:
            others.append(e.path)
            continue
        if e.path in src.remote_only:
            raise AdapterRejected(f"{e.path} was not downloaded; cannot load what was not checked")
        parts = Path(e.path).parts
        if Path(e.path).is_absolute() or ".." in parts:
            raise AdapterRejected(f"unsafe file name {e.path!r}")
        files[e.path] = _copy_file(src.root / e.path, dest / e.path)
    return Tree(root=dest, files=files, others=tuple(others))


def _fetch(source: str | Path, hub: HubOptions, ruleset: Any) -> FetchedSource:
    try:
        return fetch_source(source, hub=hub, ruleset=ruleset)
    except SigningError as exc:
        raise AdapterRejected(exc.message) from exc


def _reject_report(report: ScanReport) -> AdapterRejected | None:
    if report.verdict.decision is Decision.FAIL:
        return AdapterRejected(f"{report.subject.source}: the scan rejected the adapter",
                               report, reasons=report.verdict.reasons)
    if not report.complete:
        return AdapterRejected(f"{report.subject.source}: the scan was incomplete (fail closed)",
                               report, reasons=report.verdict.reasons)
    return None


def _compare(expected: Mapping[str, str], tree: Tree) -> tuple[str, ...]:
    problems = [f"{p}: changed after the scan" for p, d in sorted(expected.items())
                if tree.files.get(p, d) != d]
    problems += [f"{p}: missing from the copy" for p in sorted(set(expected) - set(tree.files))]
    problems += [f"{p}: not scanned" for p in sorted(set(tree.files) - set(expected))]
    return tuple(problems)


def _from_service(service: ServiceAttestation, src: FetchedSource) -> bytes:
    """The service keys verdicts by repo and commit: ask for the commit just fetched."""
    if src.kind != "hub" or not src.repo or not src.revision:
        raise UsageError(f"{src.source}: an attestation from the admission service needs a Hub "
                         "source (owner/repo[@sha]); pass a bundle file for local folders")
    return fetch_attestation(service, src.repo, src.revision)


def _check(source: str | Path, copy_dir: Path, *, attestation: Attestation | None,
           trusted_keys: Iterable[PublicKeyLike], policy: Policy, hub: HubOptions,
           trust_extra: Mapping[str, Any], scan_options: ScanOptions | None) -> Tree:
    ruleset = load_ruleset()
    if attestation is not None:
        trust = TrustConfig(keys=load_public_keys(trusted_keys), **trust_extra)
        if isinstance(attestation, ServiceAttestation):
            src = _fetch(source, hub, ruleset)
            data = _from_service(attestation, src)
        else:
            data = attestation if isinstance(attestation, bytes) else Path(attestation).read_bytes()
            src = _fetch(source, hub, ruleset)
        tree = private_copy(src, copy_dir)
        result = check_attestation(data, tree, trust, policy=policy, ruleset=ruleset)
        if not result.ok:
            reasons = tuple(f"{f.rule_id} {f.rule_name}: {f.message}" for f in result.findings)
            raise AdapterRejected(f"{source}: attestation not acceptable", None,
                                  reasons=reasons or result.verdict.reasons)
        if result.verdict.decision is Decision.WARN:
            warnings.warn(f"{source}: " + "; ".join(result.verdict.reasons), stacklevel=4)
        return tree
    opts = dataclasses.replace(scan_options, hub=hub) if scan_options else ScanOptions(hub=hub)
    report = scan(source, options=opts, policy=policy, ruleset=ruleset)
    rejected = _reject_report(report)
    if rejected is not None:
        raise rejected
    tree = private_copy(_fetch(source, hub, ruleset), copy_dir)
    problems = _compare(report.subject.digests(), tree)
    if problems:
        raise AdapterRejected(f"{source}: the bytes changed between scan and load", report,
                              reasons=problems)
    if report.verdict.decision is Decision.WARN:
        warnings.warn(f"{source}: " + "; ".join(report.verdict.reasons), stacklevel=4)
    return tree


def guarded_load(loader: Loader, model: Any, source: str | Path, *,
                 attestation: Attestation | None, trusted_keys: Iterable[PublicKeyLike],
                 policy: Policy | None, identity: str | None, issuer: str | None,
                 trusted_root: Path | None, scan_options: ScanOptions | None,
                 peft_kwargs: dict[str, Any], hub_options: HubOptions | None = None) -> Any:
    """`loader(model, <verified private copy>, **peft_kwargs)`: what load_adapter and
    guard_peft do, with the loader (PEFT's, or a test's) as a parameter."""
    base = hub_options or HubOptions(endpoint=os.environ.get("HF_ENDPOINT"))
    hub = dataclasses.replace(
        base, revision=peft_kwargs.pop("revision", None) or base.revision,
        token=peft_kwargs.pop("token", None) or base.token or os.environ.get("HF_TOKEN"))
    if peft_kwargs.get("subfolder"):
        raise AdapterScanError("subfolder= is not supported by the guard; pass the subfolder's "
                               "path or repo directly")
    trust_extra = {"identity": identity, "issuer": issuer, "trusted_root": trusted_root}
    with tempfile.TemporaryDirectory(prefix="adapterscan-load-") as tmp:
        copy_dir = Path(tmp) / "adapter"  # mkdtemp made tmp 0700: private to this user
        _check(source, copy_dir, attestation=attestation, trusted_keys=trusted_keys,
               policy=policy or Policy(), hub=hub, trust_extra=trust_extra,
               scan_options=scan_options)
        # Loaded fully into memory before the copy is removed.
        return loader(model, str(copy_dir), **peft_kwargs)


def load_adapter(model: Any, source: str | Path, *, attestation: Attestation | None = None,
                 trusted_keys: Iterable[PublicKeyLike] = (), policy: Policy | None = None,
                 identity: str | None = None, issuer: str | None = None,
                 trusted_root: Path | None = None, scan_options: ScanOptions | None = None,
                 hub_options: HubOptions | None = None, **peft_kwargs: Any) -> Any:
    """Return `PeftModel.from_pretrained(model, <verified private copy>, **peft_kwargs)`.

    With `attestation` (a bundle path or its bytes), the adapter is accepted when the bundle is
    signed by one of `trusted_keys` (PEM paths or key objects) or, keyless, by `identity` via
    `issuer`, and names exactly the copied bytes with an acceptable verdict. A
    `ServiceAttestation(url, token)` fetches the bundle of the fetched commit from an admission
    service (`adapterscan serve`) instead; it is verified the same way. Without one, the
    adapter is scanned. Raises AdapterRejected (with the report and every reason) otherwise.
    `hub_options` sets the Hub endpoint, cache and timeouts for Hub sources; PEFT's `revision=`
    and `token=` select the revision and token.
    """
    require_extra("probe", "adapterscan.load_adapter")
    from peft import PeftModel

    return guarded_load(PeftModel.from_pretrained, model, source, attestation=attestation,
                        trusted_keys=trusted_keys, policy=policy, identity=identity,
                        issuer=issuer, trusted_root=trusted_root, scan_options=scan_options,
                        peft_kwargs=peft_kwargs, hub_options=hub_options)


@contextlib.contextmanager
def guard_peft(*, attestation: Attestation | None = None,
               trusted_keys: Iterable[PublicKeyLike] = (), policy: Policy | None = None,
               identity: str | None = None, issuer: str | None = None,
               trusted_root: Path | None = None) -> Iterator[None]:
    """Within the block, `PeftModel.from_pretrained(model, source, **kw)` goes through the
    guard. Patches the class attribute: not for concurrent threads that must stay unguarded."""
    require_extra("probe", "adapterscan.integrations.preload.guard_peft")
    from peft import PeftModel

    original = PeftModel.__dict__["from_pretrained"]  # the classmethod object itself
    unguarded = PeftModel.from_pretrained
    keys = tuple(trusted_keys)

    def guarded(cls: type, model: Any, model_id: str | Path, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise TypeError("under guard_peft pass PEFT options by keyword")
        loader = unguarded if cls is PeftModel else original.__get__(None, cls)
        return guarded_load(loader, model, model_id, attestation=attestation, trusted_keys=keys,
                            policy=policy, identity=identity, issuer=issuer,
                            trusted_root=trusted_root, scan_options=None,
                            peft_kwargs=dict(kwargs))

    PeftModel.from_pretrained = classmethod(guarded)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        PeftModel.from_pretrained = original  # type: ignore[method-assign]
