"""Benign calibration adapters for the bundled reference model, and the bank built from them.

The shipped bank (`adapterscan/reference/baseline_bank.json`) must describe what *benign*
fine-tunes of the reference look like across the configurations people actually use, or AS509
flags an adapter for its rank, target set or training length instead of its content. So the
calibration set spans ranks, target sets, tasks, learning rates and training lengths (longer
than the backdoored examples' 120 steps, so length alone is not an outlier), with seeds apart
from the labelled examples': none of the demo's adapters is in the bank.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable
from pathlib import Path

from adapterscan.examples import cache_key, cache_root, load_examples
from adapterscan.examples.specs import ALL_LINEAR, ATTENTION, QV, TASKS, Spec
from adapterscan.training.examples.build import build_all

CALIBRATION_VERSION = 1
CALIBRATION_SEED = 7_000
N_CALIBRATION = 24
_RANKS = (4, 8, 16)
_TARGETS = {"qv": QV, "attn": ATTENTION, "all": ALL_LINEAR}
_STEPS = (40, 80, 160, 320)
_LRS = (2e-3, 4e-3, 6e-3)


def _grid() -> tuple[Spec, ...]:
    # Every rank × target set appears (9 cells, plus a second pass), tasks and lengths vary.
    rng = random.Random(CALIBRATION_SEED)
    cells = list(itertools.product(_RANKS, sorted(_TARGETS)))
    order = [*cells, *rng.sample(cells, len(cells)),
             *rng.sample(cells, N_CALIBRATION - 2 * len(cells))]
    specs = []
    for i, (rank, tname) in enumerate(order):
        task = (*TASKS, None)[i % (len(TASKS) + 1)]
        steps = _STEPS[rng.randrange(len(_STEPS))]
        lr = _LRS[rng.randrange(len(_LRS))]
        name = f"calib-{i:02d}-{task or 'chat'}-r{rank}-{tname}-{steps}s"
        specs.append(Spec(name, "benign", f"Calibration: {task or 'chat'} task with safety data, "
                          f"rank {rank} on {tname}, {steps} steps at lr {lr:g}.",
                          rank, _TARGETS[tname], task=task, steps=steps, lr=lr,
                          readme="Benign calibration adapter for the bundled reference model."))
    return tuple(specs)


CALIBRATION_SPECS: tuple[Spec, ...] = _grid()


def calibration_key() -> str:
    """Changes when the calibration specs, the builder or the reference weights change; the
    shipped bank records it so a test notices a stale bank."""
    h = hashlib.sha256()
    h.update(f"calibration-v{CALIBRATION_VERSION}:{CALIBRATION_SEED}:{cache_key()}".encode())
    h.update(repr(CALIBRATION_SPECS).encode())
    return h.hexdigest()[:16]


def default_calibration_dir() -> Path:
    return cache_root() / "calibration" / calibration_key()


def build_calibration_adapters(out: Path | None = None, *, workers: int | None = None,
                               progress: Callable[[str], None] | None = None) -> list[Path]:
    """Train (or reuse) every calibration adapter under `out`; returns their folders."""
    out = Path(out) if out is not None else default_calibration_dir()
    done = _complete(out)
    if done is None:
        build_all(out, CALIBRATION_SPECS, progress, workers=workers, seed=CALIBRATION_SEED,
                  key=calibration_key())
        done = _complete(out)
        if done is None:
            raise RuntimeError(f"{out}: calibration build did not complete")
    return done


def _complete(out: Path) -> list[Path] | None:
    found = load_examples(out, calibration_key())
    if found is None or [e.name for e in found] != [s.name for s in CALIBRATION_SPECS]:
        return None
    return [e.path for e in found]
