"""``xvector-validate DATA_DIR...``: check Kaldi data directories before training or scoring.

Prints, per directory, the counts of each kind of problem with the first few offenders
(``file:line utterance: detail``) and exits 1 when any directory has errors (with ``--strict``,
warnings too). The checks are :func:`xvector.data.validate.validate_data_dir`'s.

Example:
    xvector-validate data/custom/train data/custom/test --sample-rate 16000 --min-duration 1.0
"""

from __future__ import annotations

import argparse
import sys

from xvector.cli.errors import one_line_errors
from xvector.data.validate import validate_data_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="xvector-validate", description=__doc__.split("\n")[0])
    p.add_argument("data_dirs", nargs="+", metavar="DATA_DIR", help="folders with wav.scp and utt2spk")
    p.add_argument("--sample-rate", type=int, default=16000, help="rate every file must have (Hz)")
    p.add_argument("--min-duration", type=float, default=1.0, help="report utterances shorter than this (s)")
    p.add_argument("--headers-only", action="store_true", help="read headers only, do not decode samples")
    p.add_argument("--jobs", type=int, default=4, help="threads decoding audio")
    p.add_argument("--max-examples", type=int, default=3, help="offenders printed per kind of problem")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings as well")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Validate every directory given; the exit status is 1 if any failed, else 0."""
    args = parse_args(argv)
    failed = False
    with one_line_errors("xvector-validate"):
        for data_dir in args.data_dirs:
            report = validate_data_dir(data_dir, sample_rate=args.sample_rate, min_duration_sec=args.min_duration,
                                       decode=not args.headers_only, jobs=args.jobs)
            print(report.format(args.max_examples))
            failed |= report.errors > 0 or (args.strict and report.warnings > 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
