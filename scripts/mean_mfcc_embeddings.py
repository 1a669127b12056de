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

import torch

from xvector.embeddings import save_embeddings
from xvector.features.mfcc import MFCC
from xvector.inference.extraction import embed_wav_scp


class MeanMFCC(torch.nn.Module):
    """``wav (B, S)``, ``wav_lens (B,)`` → mean MFCC vector without c0 ``(B, 29)``."""

    def __init__(self) -> None:
        super().__init__()
        self.mfcc = MFCC(num_ceps=30, num_mel_bins=30, high_freq=7600.0, cmn="none")

    def forward(self, wav: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
        feats, lens = self.mfcc(wav, wav_lens)  # padding frames are zero
        return (feats.sum(1) / lens.clamp_min(1)[:, None])[:, 1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wav-scp", required=True)
    parser.add_argument("--out", required=True, help="output .npz")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ids, emb = embed_wav_scp(MeanMFCC(), args.wav_scp, batch_size=32)
    save_embeddings(args.out, ids, emb)
    logging.info("wrote %d mean-MFCC vectors to %s", len(ids), args.out)


if __name__ == "__main__":
    main()
