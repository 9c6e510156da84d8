from __future__ import annotations

import os
import tempfile

import pytest

# Tests never reach a real Hub. Anything that falls back to the default endpoint (peft looks up
# a base model's config on save, for example) hits a closed local port and fails at once; tests
# of the Hub client pass the address of their own server on 127.0.0.1.
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("HF_TOKEN", None)
# CLI scans with --base keep the base's measurements on disk; tests keep theirs apart from the
# user's cache, in a folder of this run.
os.environ["ADAPTERSCAN_PROBE_CACHE_DIR"] = tempfile.mkdtemp(prefix="adapterscan-probe-cache-")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """`adapterscan scan FOLDER --format json` in-process: (exit code, validated report)."""
    from tests.cli_runner import make_cli

    return make_cli(monkeypatch)
