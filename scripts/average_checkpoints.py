#!/usr/bin/env python
"""Average the weights of a run's last k checkpoints (or of given files) into one checkpoint.

    python scripts/average_checkpoints.py --dir exp/x/checkpoints --last 5 --out exp/x/avg5.ckpt
    python scripts/average_checkpoints.py a.ckpt b.ckpt --out exp/x/avg.ckpt

Keeping the periodic checkpoints needs ``callbacks.periodic_checkpoint.save_top_k=5`` (or more) at
training time. The output (written atomically) carries the last input's config, so
``xvector-extract ckpt_path=...`` and ``init_from=...`` take it; it has no optimizer state.
"""

from __future__ import annotations

import argparse
import logging

from xvector.training.checkpoints import average_checkpoints, last_checkpoints

log = logging.getLogger("average_checkpoints")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", help="checkpoints to average (instead of --dir/--last)")
    parser.add_argument("--dir", help="a run's checkpoints folder")
    parser.add_argument("--last", type=int, help="with --dir: how many of the latest checkpoints (by global step)")
    parser.add_argument("--out", required=True, help="the averaged checkpoint to write")
    args = parser.parse_args(argv)
    if bool(args.paths) == bool(args.dir):
        parser.error("give checkpoint paths, or --dir with --last, not both")
    if args.dir and not args.last:
        parser.error("--dir needs --last K")
    paths = args.paths or last_checkpoints(args.dir, args.last)
    average_checkpoints(paths, args.out)
    log.info("averaged %d checkpoints into %s", len(paths), args.out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
