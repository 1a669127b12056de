#!/usr/bin/env python
"""Write corrupted copies of a data dir (one of reverb / noise / music / babble each), for the back end.

Example (the recipe's stand-in noise and RIR folders; with MUSAN and RIRS_NOISES at hand, pass
their parent as --augment-dir and --config configs/augment/musan_rir.yaml):
    python scripts/augment_data_dir.py data/mine/train exp/mine/train_aug --augment-dir exp/mine/augment

The corruptions and their SNRs are the training augmentation's (--config), each copy getting one
of them with equal probability. See :mod:`xvector.data.augment_dir`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from xvector.data.augment_dir import always_one_of, augment_data_dir, load_augment_config

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data_dir", help="Kaldi data dir (wav.scp, utt2spk)")
    p.add_argument("out_dir", help="the augmented data dir (audio under <out_dir>/wav)")
    p.add_argument("--augment-dir", required=True,
                   help="folder with RIRS_NOISES/ and musan/ (the synthetic stand-ins are made there when missing)")
    p.add_argument("--config", default=str(ROOT / "configs" / "augment" / "synthetic.yaml"),
                   help="augmentation config whose 'augment' OneOf gives the kinds and SNRs")
    p.add_argument("--copies", type=int, default=1, help="corrupted copies per utterance")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    # the config is a data-group node (augment@data): its ${paths.augment_dir}, ${data.sample_rate}
    # and ${seed} resolve against a root built here
    root = OmegaConf.create({"paths": {"augment_dir": args.augment_dir}, "seed": args.seed,
                             "data": OmegaConf.merge({"sample_rate": args.sample_rate},
                                                     load_augment_config(args.config))})
    augment = instantiate(always_one_of(OmegaConf.to_container(root, resolve=True)["data"]["augment"]))
    counts = augment_data_dir(args.data_dir, args.out_dir, augment, args.sample_rate, copies=args.copies,
                              seed=args.seed)
    print(json.dumps(counts))
    return counts


if __name__ == "__main__":
    main()
