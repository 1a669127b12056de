#!/usr/bin/env python
"""SITW → data/sitw/sitw_{dev,eval} (enroll.map, core-core trials); optionally a VoxCeleb
training list without the 60 speakers SITW shares with VoxCeleb1.

    python scripts/prepare_sitw.py --sitw /corpora/sitw_database.v4 --out data/sitw \\
        --train-dir data/voxceleb/vox2_dev_vox1_dev --overlap voxceleb1_sitw_overlap.txt \\
        --vox1-meta /corpora/voxceleb1/vox1_meta.csv        # writes <train-dir>_no_sitw

Layouts and outputs: :mod:`xvector.corpora.sitw`. Score with ``xvector-score
enroll_map=data/sitw/sitw_eval/enroll.map trials=data/sitw/sitw_eval/trials ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xvector.corpora.sitw import drop_overlap, prepare_sitw, read_overlap


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sitw", type=Path, help="SITW root (dev/, eval/)")
    p.add_argument("--out", type=Path, default=Path("data/sitw"))
    p.add_argument("--train-dir", type=Path, help="a VoxCeleb training data dir to copy without the overlap")
    p.add_argument("--overlap", type=Path, help="voxceleb1_sitw_overlap.txt (OpenSLR 49): names or ids")
    p.add_argument("--vox1-meta", type=Path, help="vox1_meta.csv: VoxCeleb1 id <TAB> name ...")
    p.add_argument("--train-out", type=Path, help="where the filtered copy goes (default <train-dir>_no_sitw)")
    args = p.parse_args(argv)
    try:
        if not args.sitw and not args.train_dir:
            raise ValueError("give --sitw and/or --train-dir with --overlap")
        for line in prepare_sitw(args.sitw, args.out) if args.sitw else []:
            print(line)
        if args.train_dir:
            if not args.overlap:
                raise ValueError("--train-dir needs --overlap (voxceleb1_sitw_overlap.txt)")
            out = args.train_out or args.train_dir.with_name(args.train_dir.name + "_no_sitw")
            print(drop_overlap(args.train_dir, out, read_overlap(args.overlap, args.vox1_meta)))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
