"""The scan process keeps freed memory (glibc): the settings are accepted where glibc is the
allocator, and nothing is attempted elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from adapterscan.cli.malloc_tuning import keep_freed_memory


def test_glibc_accepts_the_settings() -> None:
    # In a child: the settings are process-wide and this test must not retune the test runner.
    out = subprocess.run([sys.executable, "-c", "from adapterscan.cli.malloc_tuning import "
                          "keep_freed_memory; print(keep_freed_memory())"],
                         capture_output=True, text=True, check=True)
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert out.stdout.strip() == str(glibc)


def test_nothing_is_attempted_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
