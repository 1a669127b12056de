#!/usr/bin/env python
"""Make a Kaldi data dir (wav.scp, utt2spk, spk2utt) from <root>/<speaker>/**/*.{wav,flac} or a path,speaker table.

Examples:
    python scripts/prepare_dir.py /corpora/mine/train data/mine/train --holdout dev=20
    python scripts/prepare_dir.py /corpora/mine/test.csv data/mine/test

``--holdout NAME=N`` moves N random speakers (with two or more utterances) into the sibling
folder ``NAME`` of the output, e.g. a development set for validation EER during training.
Unreadable or empty files are left out and counted. See :mod:`xvector.corpora.prepare`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xvector.corpora.prepare import AUDIO_EXTENSIONS, prepare_data_dir, split_speakers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("source", help="corpus root (<root>/<speaker>/...) or a .csv/.tsv of path,speaker rows")
    p.add_argument("out_dir", help="output data directory")
    p.add_argument("--ext", nargs="+", default=list(AUDIO_EXTENSIONS), help="audio file endings in a tree")
    p.add_argument("--no-header-check", action="store_true", help="do not open each file's header")
    p.add_argument("--holdout", action="append", default=[], metavar="NAME=N",
                   help="move N speakers into the sibling data dir NAME (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out speaker draw")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        holdout = {str(Path(args.out_dir).parent / k): int(v) for k, v in (h.split("=", 1) for h in args.holdout)}
    except ValueError:
        print(f"--holdout takes NAME=N, got {args.holdout}", file=sys.stderr)
        return 2
    try:
        report = prepare_data_dir(args.source, args.out_dir, extensions=tuple(args.ext),
                                  check_headers=not args.no_header_check)
        print(f"{args.out_dir}: {report.summary()}")
        for folder, speakers in split_speakers(args.out_dir, holdout, args.seed).items() if holdout else ():
            print(f"{folder}: {len(speakers)} held-out speakers")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
