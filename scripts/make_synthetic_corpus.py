#!/usr/bin/env python
"""Write a synthetic multi-speaker corpus (wavs + Kaldi lists + trials) with disjoint splits.

Example:
    python scripts/make_synthetic_corpus.py --out data/synthetic --workers 2

See :func:`xvector.corpora.synthetic.corpus.make_corpus` for the layout. Imports numpy / scipy only.
"""

from __future__ import annotations

import argparse
import logging

from xvector.corpora.synthetic.corpus import make_corpus


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--train-speakers", type=int, default=600,
                   help="many speakers with few utterances each generalise better to unseen ones")
    p.add_argument("--train-utts", type=int, default=10, help="utterances per train speaker")
    p.add_argument("--test-speakers", type=int, default=40)
    p.add_argument("--test-utts", type=int, default=20)
    p.add_argument("--dev-speakers", type=int, default=20, help="held out for validation EER")
    p.add_argument("--dev-utts", type=int, default=10)
    p.add_argument("--min-sec", type=float, default=2.0)
    p.add_argument("--max-sec", type=float, default=6.0)
    p.add_argument("--trials-per-utt", type=int, default=10, help="half target, half nontarget")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return make_corpus(
        args.out,
        n_train_speakers=args.train_speakers,
        n_train_utts=args.train_utts,
        n_test_speakers=args.test_speakers,
        n_test_utts=args.test_utts,
        n_dev_speakers=args.dev_speakers,
        n_dev_utts=args.dev_utts,
        min_sec=args.min_sec,
        max_sec=args.max_sec,
        sample_rate=args.sample_rate,
        seed=args.seed,
        num_workers=args.workers,
        trials_per_utt=args.trials_per_utt,
    )


if __name__ == "__main__":
    main()
