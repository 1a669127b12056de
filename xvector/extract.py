"""``xvector-extract``: embed every utterance of a ``wav.scp`` with a trained checkpoint.

    xvector-extract ckpt_path=exp/x/checkpoints/last.ckpt wav_scp=data/test/wav.scp output=exp/x/test.npz

Whole utterances, no augmentation, no dither (eval mode), batched by length with masks; the
net is rebuilt from the config saved in the checkpoint. Output is written atomically.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from xvector import CONFIG_DIR
from xvector.data.datamodule import utterance_loader
from xvector.embeddings import save_embeddings
from xvector.lit_module import load_embedder

log = logging.getLogger(__name__)


@torch.inference_mode()
def embed_wav_scp(
    embedder: torch.nn.Module, wav_scp: str | Path, batch_size: int = 16, num_workers: int = 0, sample_rate: int = 16000,
    device: str = "cpu",
) -> tuple[list[str], np.ndarray]:
    """Embeddings ``(N, D)`` of every utterance of ``wav_scp``, in ``wav.scp`` order.

    ``embedder`` is any module ``(wav (B, S), wav_lens (B,)) -> (B, D)``, e.g. an :class:`Embedder`.
    """
    loader = utterance_loader(wav_scp, batch_size, num_workers, sample_rate)
    embedder = embedder.to(device).eval()
    found: dict[str, np.ndarray] = {}
    for batch in loader:
        emb = embedder(batch["wav"].to(device), batch["wav_lens"].to(device))
        found.update(zip(batch["utts"], emb.float().cpu().numpy()))
    ids = loader.dataset.utts
    return ids, np.stack([found[u] for u in ids])


def extract(cfg: DictConfig) -> Path:
    embedder, run_cfg = load_embedder(cfg.ckpt_path)
    start = time.perf_counter()
    ids, emb = embed_wav_scp(
        embedder, cfg.wav_scp, cfg.batch_size, cfg.num_workers, run_cfg.data.sample_rate, cfg.device
    )
    save_embeddings(cfg.output, ids, emb)
    log.info("wrote %d embeddings of dim %d to %s in %.1f s", len(ids), emb.shape[1], cfg.output, time.perf_counter() - start)
    return Path(cfg.output)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="extract")
def main(cfg: DictConfig) -> None:
    extract(cfg)


if __name__ == "__main__":
    main()
