"""Parse a SOURCE argument into a fetcher: a folder, hf://owner/repo[@rev] or owner/repo[@rev]."""

from __future__ import annotations

from pathlib import Path

from adapterscan.errors import UsageError
from adapterscan.fetch.hub_options import HubOptions, parse_hub_ref
from adapterscan.fetch.interface import Fetcher, FetchLimits
from adapterscan.fetch.local import LocalFetcher


def make_fetcher(source: str, *, hub: HubOptions | None = None,
                 limits: FetchLimits | None = None) -> Fetcher:
    """Local path first (an existing folder wins over a Hub id of the same shape)."""
    path = Path(source)
    if not source.startswith("hf://") and (path.exists() or path.is_symlink()):
        return LocalFetcher(path, limits)
    ref = parse_hub_ref(source)
    if ref is None:
        raise UsageError(f"{source}: no such folder, and not a Hub id",
                         hint="use a folder, hf://owner/repo[@rev] or owner/repo[@rev]")
    from adapterscan.fetch.hub import HubFetcher  # only Hub scans pay for huggingface_hub

    opts = hub or HubOptions()
    if opts.revision and ref.revision and opts.revision != ref.revision:
        raise UsageError(f"{source}: revision given twice ({ref.revision!r} and "
                         f"--revision {opts.revision!r})")
    return HubFetcher(ref.repo, ref.revision or opts.revision, opts, limits or FetchLimits())
