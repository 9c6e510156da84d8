"""Line coverage of what a harness's fuzzing kept: `python -m benchmarks.fuzz.lines NAME WORKDIR`
replays every input of WORKDIR/corpus/NAME (and the seeds) once under sys.settrace and prints
{"lines": executed lines, "of": executable lines, "files": how many} over the adapterscan files
that the inputs reached. Tracing starts before the harness is imported, so that module-level
lines count as they do under coverage.py; files only imported are left out."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

_PKG = "/adapterscan/"


def _executable(path: str) -> set[int]:
    code = compile(Path(path).read_text(), path, "exec")
    lines: set[int] = set()
    todo: list[CodeType] = [code]
    while todo:
        c = todo.pop()
        lines.update(line for _, _, line in c.co_lines() if line is not None)
        todo.extend(k for k in c.co_consts if isinstance(k, CodeType))
    return lines


def replay(name: str, work: Path) -> dict[str, int]:
    executed: set[tuple[str, int]] = set()
    reached: set[str] = set()
    replaying = False

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        path = frame.f_code.co_filename
        if _PKG not in path:
            return None
        if event == "line":
            executed.add((path, frame.f_lineno))
            if replaying:
                reached.add(path)
        return tracer

    sys.settrace(tracer)
    harness = importlib.import_module(f"benchmarks.fuzz.h_{name}")
    target = harness.prepare(work / "scratch" / f"lines-{name}", work / "assets")
    inputs = [p for d in (work / "corpus" / name, work / "seeds" / name) if d.is_dir()
              for p in sorted(d.iterdir())]
    replaying = True
    for p in inputs:
        try:
            target(p.read_bytes())
        except BaseException:  # the fuzz run judged each input; here only lines count
            continue
    sys.settrace(None)
    return {"lines": sum(1 for path, _ in executed if path in reached),
            "of": sum(len(_executable(f)) for f in reached), "files": len(reached),
            "inputs": len(inputs)}


if __name__ == "__main__":
    print(json.dumps(replay(sys.argv[1], Path(sys.argv[2]))))
