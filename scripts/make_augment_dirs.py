#!/usr/bin/env python
"""Write synthetic MUSAN-layout noise and RIRS_NOISES-layout room impulse responses.

Example:
    python scripts/make_augment_dirs.py --out data/synthetic/augment

Then train with ``augment@data=synthetic``. See :func:`xvector.corpora.synthetic.noise.make_augment_dirs`.
"""

from __future__ import annotations

import argparse
import json

from xvector.corpora.synthetic.noise import make_augment_dirs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder (gets musan/ and RIRS_NOISES/)")
    p.add_argument("--noise", type=int, default=20, help="noise files")
    p.add_argument("--music", type=int, default=10, help="music files")
    p.add_argument("--speech", type=int, default=20, help="speech files (babble sources)")
    p.add_argument("--rooms", type=int, default=3, help="rooms per size (small, medium, large)")
    p.add_argument("--rirs-per-room", type=int, default=4)
    p.add_argument("--min-sec", type=float, default=3.0)
    p.add_argument("--max-sec", type=float, default=8.0)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    counts = make_augment_dirs(args.out, n_noise=args.noise, n_music=args.music, n_speech=args.speech,
                               rooms_per_size=args.rooms, rirs_per_room=args.rirs_per_room,
                               min_sec=args.min_sec, max_sec=args.max_sec,
                               sample_rate=args.sample_rate, seed=args.seed)
    print(json.dumps(counts))
    return counts


if __name__ == "__main__":
    main()
