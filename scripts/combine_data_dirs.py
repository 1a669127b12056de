#!/usr/bin/env python
"""Combine Kaldi data dirs (prefixed ids, optional per-dir subsampling), e.g. target + some source data.

Example (fine-tuning on data/mine, keeping 100 source speakers with 4 utterances each):
    python scripts/combine_data_dirs.py data/mine/train data/source/train --out data/mine_mix/train \\
        --prefix tgt src --max-speakers all 100 --max-utts-per-speaker all 4

See :func:`xvector.data.combine.combine_data_dirs`.
"""

from __future__ import annotations

import argparse

from xvector.data.combine import combine_data_dirs


def _caps(values: list[str] | None, what: str) -> list[int | None] | None:
    if values is None:
        return None
    try:
        return [None if v == "all" else int(v) for v in values]
    except ValueError:
        raise SystemExit(f"combine_data_dirs: {what} takes integers or 'all', got {values}") from None


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dirs", nargs="+", help="Kaldi data dirs (wav.scp, utt2spk)")
    p.add_argument("--out", required=True, help="the combined data dir")
    p.add_argument("--prefix", nargs="+", help="one id prefix per dir (keeps the corpora's speakers apart)")
    p.add_argument("--max-speakers", nargs="+", help="per dir: a count or 'all'")
    p.add_argument("--max-utts-per-speaker", nargs="+", help="per dir: a count or 'all'")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        summary = combine_data_dirs(args.dirs, args.out, args.prefix, _caps(args.max_speakers, "--max-speakers"),
                                    _caps(args.max_utts_per_speaker, "--max-utts-per-speaker"), args.seed)
    except ValueError as err:
        raise SystemExit(f"combine_data_dirs: {err}") from None
    print(f"{args.out}: {summary['speakers']} speakers, {summary['utterances']} utterances "
          f"(per dir: {', '.join(f'{s} speakers / {u} utterances' for s, u in summary['per_dir'])})")
    return summary


if __name__ == "__main__":
    main()
