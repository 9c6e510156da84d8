"""Wall-clock spans of the probe's phases, for the report's timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Timer:
    spans: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.spans[name] = round(self.spans.get(name, 0.0) + now - since, 4)
        return now
