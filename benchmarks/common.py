"""Shared shape of a benchmark: each module's `run()` returns a BenchTable."""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path

# The corpus of adapters other people published (issue 23), read by bench_real, bench_payloads
# and bench_peft_oracle.
REAL_ADAPTERS = Path(os.environ.get("ADAPTERSCAN_REAL_ADAPTERS", "/work/shared/data/real-adapters"))


@dataclass(frozen=True)
class BenchTable:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: str = ""

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", "| " + " | ".join(self.headers) + " |",
                 "| " + " | ".join("---" for _ in self.headers) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            lines += ["", self.notes]
        return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def real_adapter_folders() -> list[Path]:
    """Every folder of the real-adapter corpus, in name order (none when it is absent)."""
    if not REAL_ADAPTERS.is_dir():
        return []
    return sorted(p for p in REAL_ADAPTERS.iterdir() if p.is_dir())


def corpus_missing(title: str) -> BenchTable:
    """The table of a benchmark whose real-adapter corpus is not on this machine."""
    return BenchTable(title, ("note",), ((
        f"corpus not found at {REAL_ADAPTERS} (set ADAPTERSCAN_REAL_ADAPTERS)",),))


def half_of(name: str) -> str:
    """"fit" or "check": the first byte of sha256(folder name) below 128 is fit. Thresholds are
    fitted on the fit half only; the check half measures them on adapters they never saw."""
    return "fit" if hashlib.sha256(name.encode()).digest()[0] < 128 else "check"
