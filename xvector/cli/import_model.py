"""``xvector-import``: a SpeechBrain or WeSpeaker speaker model → an xvector model directory.

    xvector-import pretrained/spkrec-ecapa-voxceleb exp/sb_ecapa          # hyperparams.yaml + embedding_model.ckpt
    xvector-import wespeaker/exp/campplus exp/ws_campp --format onnx      # config.yaml + avg_model.pt
    xvector-import wespeaker/exp/xvec exp/ws_xvec --checkpoint wespeaker/exp/xvec/models/model_150.pt

The toolkit is recognised from the folder's files (``--from`` names it). The model directory is
what ``xvector-export`` writes (:mod:`xvector.inference.model_dir`): ``xvector.load_model``,
``xvector-extract model_dir=``, ``xvector-verify --model`` and ``init_from=`` (fine-tuning) take
it. What each importer supports and how it is tested: :mod:`xvector.importers.speechbrain`,
:mod:`xvector.importers.wespeaker`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from xvector.importers import speechbrain, wespeaker
from xvector.inference.model_dir import FORMATS

log = logging.getLogger(__name__)


def detect(src: Path) -> str:
    """``"speechbrain"`` or ``"wespeaker"`` from the files in ``src``; ``ValueError`` naming the folder otherwise."""
    if (src / speechbrain.HYPERPARAMS).is_file():
        return "speechbrain"
    if (src / wespeaker.CONFIG).is_file():
        return "wespeaker"
    raise ValueError(f"{src}: neither a SpeechBrain folder ({speechbrain.HYPERPARAMS}) nor a WeSpeaker one "
                     f"({wespeaker.CONFIG}); give --from")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="xvector-import", description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="the peer's model folder")
    p.add_argument("output", help="model directory to create")
    p.add_argument("--from", dest="toolkit", choices=["speechbrain", "wespeaker"], help="default: from the files")
    p.add_argument("--checkpoint", help="WeSpeaker: a checkpoint other than avg_model.pt")
    p.add_argument("--with-mean", action="store_true",
                   help="SpeechBrain: store mean_var_norm_emb.ckpt's embedding mean (subtracted before cosine)")
    p.add_argument("--format", action="append", default=[], choices=sorted(FORMATS),
                   help="also export the embedder graph (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    args = parse_args(argv)
    src, formats = Path(args.source), list(dict.fromkeys(args.format))
    try:
        if not src.is_dir():
            raise ValueError(f"{src}: no such folder")
        toolkit = args.toolkit or detect(src)
        if toolkit == "speechbrain":
            if args.checkpoint:
                raise ValueError("--checkpoint is for WeSpeaker folders (SpeechBrain's is embedding_model.ckpt)")
            out = speechbrain.import_speechbrain(src, args.output, with_mean=args.with_mean, formats=formats,
                                                 overwrite=args.overwrite)
        else:
            if args.with_mean:
                raise ValueError("--with-mean is for SpeechBrain folders (mean_var_norm_emb.ckpt)")
            out = wespeaker.import_wespeaker(src, args.output, checkpoint=args.checkpoint, formats=formats,
                                             overwrite=args.overwrite)
    except ValueError as err:
        raise SystemExit(f"xvector-import: {err}") from None
    log.info("wrote %s (%s): %s", out, toolkit, ", ".join(sorted(p.name for p in out.iterdir())))


if __name__ == "__main__":
    main()
