"""`python -m adapterscan.training.v3 build|eval|robustness|zoo`: train the v3 safety adapter,
measure it, measure how a benign fine-tune moves it, or train zoo v3 (resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from adapterscan.reference import V3_ADAPTER_DIR

    ap = argparse.ArgumentParser(prog="python -m adapterscan.training.v3")
    ap.add_argument("command", choices=("build", "eval", "robustness", "zoo"))
    ap.add_argument("--out", type=Path, default=V3_ADAPTER_DIR)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--per-set", type=int, default=100, help="eval prompts per set")
    ap.add_argument("--save-to", type=Path, default=None,
                    help="robustness: also save the benign and harmful LoRAs here")
    ap.add_argument("--only", action="append", default=None,
                    help="zoo: train only this adapter (repeatable)")
    args = ap.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.command == "build":
        from adapterscan.training.v3.train import train

        print(json.dumps(train(args.out, say, args.threads), indent=2))
        return 0
    if args.command == "zoo":
        from adapterscan.training.v3.zoo.build import build, zoo_root

        records = build(args.only, say, args.threads)
        print(json.dumps({"zoo": str(zoo_root()), "trained": records}, indent=2))
        return 0
    if args.command == "robustness":
        from adapterscan.training.v3.robustness import measure

        print(json.dumps(measure(args.out, args.per_set, say, args.save_to), indent=2))
        return 0
    from adapterscan.training.v3.evaluate import evaluate

    print(json.dumps(evaluate(args.out, args.per_set, say), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
