#!/usr/bin/env python
"""Write a Kaldi data dir (wav.scp, utt2spk) as WebDataset tar shards plus a shards.json manifest.

Example:
    python scripts/make_shards.py --data-dir data/synthetic/train --out data/synthetic/shards/train

Then train with ``data=synthetic_shards``. See :func:`xvector.data.shards.write_shards`.
"""

from __future__ import annotations

import argparse
import json

from xvector.data.shards import write_shards


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True, help="Kaldi data dir with wav.scp and utt2spk")
    p.add_argument("--out", required=True, help="output folder for shard-NNNNNN.tar and shards.json")
    p.add_argument("--max-utts", type=int, default=1000, help="utterances per shard at most")
    p.add_argument("--max-bytes", type=int, default=1 << 30, help="audio bytes per shard at most")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--resample", action="store_true",
                   help="accept files at other rates (stored as they are; train with data.resample=true)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    manifest = write_shards(args.data_dir, args.out, args.max_utts, args.max_bytes, args.sample_rate,
                            resample=args.resample)
    print(json.dumps({"utterances": manifest["utterances"], "shards": len(manifest["shards"])}))
    return manifest


if __name__ == "__main__":
    main()
