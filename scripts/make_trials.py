#!/usr/bin/env python
"""Write a balanced random trial list (<enroll> <test> target|nontarget) for a data dir's speakers.

Example:
    python scripts/make_trials.py data/mine/test --targets 5000 --nontargets 5000 --seed 0

The list goes to ``DATA_DIR/trials`` (or ``--out``); it depends only on ``utt2spk`` and the
seed. See :func:`xvector.data.trials.make_trials`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xvector.data.lists import read_kaldi_map, write_trials
from xvector.data.trials import make_trials


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data_dir", help="data directory with utt2spk")
    p.add_argument("--targets", type=int, default=5000, help="target trials")
    p.add_argument("--nontargets", type=int, default=5000, help="nontarget trials")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clip", action="store_true", help="fewer trials, not an error, when fewer pairs exist")
    p.add_argument("--out", default=None, help="output file (default DATA_DIR/trials)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) if args.out else Path(args.data_dir) / "trials"
    try:
        utt2spk = read_kaldi_map(Path(args.data_dir) / "utt2spk")
        trials = make_trials(utt2spk, args.targets, args.nontargets, args.seed, clip=args.clip)
    except ValueError as err:
        print(f"error: {args.data_dir}: {err}", file=sys.stderr)
        return 1
    write_trials(out, trials)
    print(f"{out}: {sum(t.target for t in trials)} target, {sum(not t.target for t in trials)} nontarget trials")
    return 0


if __name__ == "__main__":
    sys.exit(main())
