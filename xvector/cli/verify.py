"""``xvector-verify``: is it the same speaker in two recordings?

    xvector-verify enroll.wav test.wav --model exp/x/model
    score 0.7312, llr 4.210, decision: same speaker (llr >= 1.2000)

argparse rather than Hydra: two positional files and a model read better than ``key=value``
overrides, and there is no config to compose. The model is a directory from ``xvector-export``
(or a bare training checkpoint: score only, unless ``--threshold`` is given). Files at another
sample rate are resampled, multi-channel files downmixed. ``--json`` prints the result as one
JSON object. Errors (unreadable audio, too short, bad model) exit with status 1 and a message.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="xvector-verify", description="Score two recordings and decide same/different speaker.")
    p.add_argument("enroll", help="first audio file")
    p.add_argument("test", help="second audio file")
    p.add_argument("--model", required=True, help="model directory (xvector-export) or training checkpoint")
    p.add_argument("--threshold", type=float, help="override the model's threshold (on the LLR if calibrated, else the score)")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a line")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from xvector.inference.api import load_model  # after argument parsing: --help stays instant

    try:
        result = load_model(args.model).verify(args.enroll, args.test, threshold=args.threshold)
    except ValueError as err:
        raise SystemExit(f"xvector-verify: {err}") from None
    print(json.dumps(dataclasses.asdict(result)) if args.json else result)


if __name__ == "__main__":
    main()
