"""``xvector-export``: a training checkpoint → a self-contained model directory.

    xvector-export exp/x/checkpoints/last.ckpt exp/x/model \\
        --mean-embeddings exp/x/train.npz --score-dir exp/x/scores --format onnx --format torchscript

The directory layout is described in :mod:`xvector.inference.model_dir`; ``--format`` adds the
ONNX / TorchScript graphs of :mod:`xvector.inference.graph` (Fbank front-end inside).
``--overwrite`` replaces only a model directory this tool wrote (or an empty folder), never the
folder holding the checkpoint; a calibration or threshold made on scores with another mean (or
back end) than the one exported is refused. Errors are one line (``XVECTOR_DEBUG=1`` or
``--debug``: the traceback).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from xvector.cli.errors import one_line_errors

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="xvector-export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="training checkpoint (e.g. exp/x/checkpoints/last.ckpt)")
    p.add_argument("output", help="model directory to create")
    p.add_argument("--mean-embeddings", help=".npz of training embeddings; their mean is stored")
    p.add_argument("--score-dir", help="an xvector-score output dir: takes its calibration.json and threshold.json")
    p.add_argument("--calibration", help="calibration.json ({'scale', 'offset'})")
    p.add_argument("--threshold", help="threshold.json ({'threshold', 'on', ...})")
    p.add_argument("--format", action="append", default=[], choices=("onnx", "torchscript"),
                   help="also export the embedder graph (repeatable)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model directory written by xvector-export (or an empty folder)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    args = parse_args(argv)
    with one_line_errors("xvector-export", debug=args.debug or None):
        out = export(args)
    log.info("wrote %s: %s", out, ", ".join(sorted(p.name for p in out.iterdir())))


def export(args: argparse.Namespace) -> Path:
    """Write the model directory that the parsed arguments describe; returns its path."""
    # imported here: --help and argument errors stay instant (no torch import)
    from xvector.inference.model_dir import CALIBRATION_FILE, THRESHOLD_FILE, write_model_dir

    calibration, threshold = args.calibration, args.threshold
    if args.score_dir:
        score_dir = Path(args.score_dir)
        if not score_dir.is_dir():
            raise ValueError(f"{score_dir}: --score-dir is not a folder (an xvector-score output_dir)")
        if calibration is None and (score_dir / CALIBRATION_FILE).is_file():
            calibration = score_dir / CALIBRATION_FILE
        if threshold is None and (score_dir / THRESHOLD_FILE).is_file():
            threshold = score_dir / THRESHOLD_FILE
        if calibration is None and threshold is None:
            raise ValueError(f"{score_dir}: no {CALIBRATION_FILE} or {THRESHOLD_FILE} (write them with xvector-score)")
    return write_model_dir(args.output, args.checkpoint, args.mean_embeddings, calibration, threshold,
                           formats=list(dict.fromkeys(args.format)), overwrite=args.overwrite)


if __name__ == "__main__":
    main()
