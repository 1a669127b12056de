"""``xvector-verify``: is it the same speaker in two recordings?

    xvector-verify enroll.wav test.wav --model exp/x/model
    score 0.7312, llr 4.210, decision: same speaker (llr >= 1.2000)

argparse rather than Hydra: two positional files and a model read better than ``key=value``
overrides, and there is no config to compose. The model is a directory from ``xvector-export``
(or a bare training checkpoint: score only, unless ``--threshold`` is given). Files at another
sample rate are resampled, multi-channel files downmixed. ``--json`` prints the result as one
JSON object. Errors (missing, truncated, silent or unreadable audio, too short, bad model) exit
with status 1 and one line naming the file (``--debug`` or ``XVECTOR_DEBUG=1``: the traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Sequence

from xvector.cli.errors import one_line_errors


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="xvector-verify", description="Score two recordings and decide same/different speaker.")
    p.add_argument("enroll", help="first audio file")
    p.add_argument("test", help="second audio file")
    p.add_argument("--model", required=True, help="model directory (xvector-export) or training checkpoint")
    p.add_argument("--threshold", type=float, help="override the model's threshold (on the LLR if calibrated, else the score)")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a line")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with one_line_errors("xvector-verify", debug=args.debug or None):
        if args.threshold is not None and not math.isfinite(args.threshold):
            raise ValueError(f"--threshold {args.threshold}: must be a finite number")
        from xvector.inference.api import load_model  # after argument parsing: --help stays instant

        result = load_model(args.model).verify(args.enroll, args.test, threshold=args.threshold)
    print(json.dumps(dataclasses.asdict(result)) if args.json else result)


if __name__ == "__main__":
    main()
