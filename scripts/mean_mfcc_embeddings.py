#!/usr/bin/env python
"""Baseline "embeddings": the mean MFCC vector of each utterance (no network).

    python scripts/mean_mfcc_embeddings.py --wav-scp data/synthetic/test/wav.scp --out exp/baseline/test.npz

Kaldi MFCCs (30 cepstra from 30 mel bands, no CMN: CMN would zero the mean) averaged over the
utterance, with c0 (log-energy, a gain measure) dropped. Scored with the same cosine backend as
the x-vectors, it shows what a long-term spectral average alone achieves on a corpus.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from xvector.data.datamodule import utterance_loader
from xvector.embeddings import save_embeddings
from xvector.features.mfcc import MFCC


@torch.inference_mode()
def mean_mfcc(wav_scp: str, batch_size: int = 32) -> tuple[list[str], np.ndarray]:
    mfcc = MFCC(num_ceps=30, num_mel_bins=30, high_freq=7600.0, cmn="none").eval()
    loader = utterance_loader(wav_scp, batch_size)
    found = {}
    for batch in loader:
        feats, lens = mfcc(batch["wav"], batch["wav_lens"])  # padding frames are zero
        means = feats.sum(1) / lens.clamp_min(1)[:, None]
        found.update(zip(batch["utts"], means[:, 1:].numpy()))
    ids = loader.dataset.utts
    return ids, np.stack([found[u] for u in ids])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wav-scp", required=True)
    parser.add_argument("--out", required=True, help="output .npz")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ids, emb = mean_mfcc(args.wav_scp)
    save_embeddings(args.out, ids, emb)
    logging.info("wrote %d mean-MFCC vectors to %s", len(ids), args.out)


if __name__ == "__main__":
    main()
