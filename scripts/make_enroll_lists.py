#!/usr/bin/env python
"""Enrolment / identification protocol for a data dir: enroll.map, model trials, query list.

    python scripts/make_enroll_lists.py data/synthetic/test --enroll-utts 3 --unknown-speakers 10 \\
        --out data/synthetic/test_enroll

Each speaker but ``--unknown-speakers`` random ones enrols a model (named after the speaker)
from ``--enroll-utts`` random utterances; every other utterance is a query. Writes
``OUT/enroll.map`` (``<speaker> <utt> ...``), ``OUT/trials`` (every model against every query:
``xvector-score enroll_map=OUT/enroll.map trials=OUT/trials``) and ``OUT/query_utt2spk`` (the
queries and their speakers: ``xvector-identify --utt2spk``; the unknown speakers' queries are
the non-mated searches). See :func:`xvector.data.enrollment.enrollment_split`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xvector.data.enrollment import enrollment_split, model_trials, write_enroll_map
from xvector.data.lists import read_kaldi_map, write_kaldi_map, write_trials


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data_dir", help="data directory with utt2spk")
    p.add_argument("--enroll-utts", type=int, default=3, help="utterances per enrolled model")
    p.add_argument("--unknown-speakers", type=int, default=0, help="speakers left out (non-mated queries)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        utt2spk = read_kaldi_map(Path(args.data_dir) / "utt2spk")
        split = enrollment_split(utt2spk, args.enroll_utts, args.unknown_speakers, args.seed)
    except ValueError as err:
        print(f"error: {args.data_dir}: {err}", file=sys.stderr)
        return 1
    trials = model_trials(split.enroll_map, split.queries, utt2spk)
    write_enroll_map(args.out / "enroll.map", split.enroll_map)
    write_trials(args.out / "trials", trials)
    write_kaldi_map(args.out / "query_utt2spk", {q: utt2spk[q] for q in split.queries})
    mated = sum(utt2spk[q] in split.enroll_map for q in split.queries)
    print(f"{args.out}: {len(split.enroll_map)} models x {args.enroll_utts} utterances, {len(split.queries)} queries "
          f"({mated} mated, {len(split.queries) - mated} of {len(split.unknown)} unknown speakers), "
          f"{len(trials)} trials ({sum(t.target for t in trials)} target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
