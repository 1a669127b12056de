#!/usr/bin/env python
"""CN-Celeb 1 (+ 2) → data/cnceleb/{train,eval,eval_enroll} with enroll.map and trials.

    python scripts/prepare_cnceleb.py --cn1 /corpora/CN-Celeb_flac [--cn2 /corpora/CN-Celeb2_flac] --out data/cnceleb

Layouts and outputs: :mod:`xvector.corpora.cnceleb`. Then, e.g. (Avg and Concat):

    xvector-extract model_dir=M wav_scp=data/cnceleb/eval/wav.scp output=exp/cn/eval.npz
    xvector-score embeddings=exp/cn/eval.npz trials=data/cnceleb/eval/trials \\
        enroll_map=data/cnceleb/eval/enroll.map output_dir=exp/cn/scores_avg
    xvector-extract model_dir=M wav_scp=data/cnceleb/eval_enroll/wav.scp output=exp/cn/enroll_concat.npz
    xvector-score embeddings=exp/cn/eval.npz trials=data/cnceleb/eval/trials enroll_map=data/cnceleb/eval/enroll.map \\
        enroll_mode=concat enroll_embeddings=exp/cn/enroll_concat.npz output_dir=exp/cn/scores_concat
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xvector.corpora.cnceleb import prepare_cnceleb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cn1", type=Path, required=True, help="CN-Celeb1 root (data/, dev/, eval/)")
    p.add_argument("--cn2", type=Path, help="CN-Celeb2 root (data/, spk.lst): added to train/")
    p.add_argument("--out", type=Path, default=Path("data/cnceleb"))
    args = p.parse_args(argv)
    try:
        print(prepare_cnceleb(args.cn1, args.out, args.cn2))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
