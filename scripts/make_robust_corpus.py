#!/usr/bin/env python
"""Write a robustness corpus: few speakers, TTS or unseen-setting voices, level spread, digital
silence, channels, and noisy copies of dev and test (0-15 dB white/pink/brown/babble).

Example:
    python scripts/make_robust_corpus.py --out data/robust/tts --voices tts        # needs espeak-ng
    python scripts/make_robust_corpus.py --out data/robust/formant --voices formant

See :mod:`xvector.corpora.robust` for the layout.
"""

from __future__ import annotations

import argparse
import json
import logging

from xvector.corpora.robust import VOICES, make_robust_corpus


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--voices", choices=VOICES, default="tts")
    p.add_argument("--train-speakers", type=int, default=24)
    p.add_argument("--train-utts", type=int, default=20)
    p.add_argument("--eval-speakers", type=int, default=24, help="speakers of each of dev and test")
    p.add_argument("--eval-utts", type=int, default=10)
    p.add_argument("--langs", type=int, default=6, help="languages (tts) or accents (formant) per split")
    p.add_argument("--min-sec", type=float, default=2.0)
    p.add_argument("--max-sec", type=float, default=6.0)
    p.add_argument("--trials", type=int, default=2000, help="per list, half targets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    summary = make_robust_corpus(
        args.out, voices=args.voices, n_train_speakers=args.train_speakers, n_train_utts=args.train_utts,
        n_eval_speakers=args.eval_speakers, n_eval_utts=args.eval_utts, n_langs=args.langs,
        min_sec=args.min_sec, max_sec=args.max_sec, num_trials=args.trials, seed=args.seed,
        num_workers=args.workers,
    )
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
