"""The training system: features + embedding net + classification head + cross-entropy.

Validation embeds whole utterances of the validation set and scores its trial list with the
same functions as ``xvector-score`` (:mod:`xvector.scoring.cosine`, :mod:`xvector.metrics`),
logging ``val/eer`` and ``val/min_dcf``. The resolved run config is stored in every checkpoint,
so :func:`load_embedder` rebuilds the net from the checkpoint alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from xvector.data.lists import Trial, read_trials
from xvector.embedder import Embedder
from xvector.metrics import verification_metrics
from xvector.scoring.cosine import score_trials, trial_labels

CONFIG_KEY = "xvector_config"


class SpeakerSystem(L.LightningModule):
    """Speaker-classification training of an embedding extractor.

    Args:
        features: front-end module ``(wav, wav_lens) -> (feats (B, T, F), frame_lens)`` with
            an ``out_dim`` attribute.
        net: factory ``net(in_channels=F)`` for the embedding net ``(B, F, T) -> (B, D)``
            exposing ``head_in_dim`` and ``classifier_input``.
        head: factory ``head(in_dim, num_classes)`` returning logits ``(B, num_classes)``.
        optimizer: factory ``optimizer(params)``.
        scheduler: optional factory ``scheduler(optimizer, total_steps=...)``, stepped per step.
        num_classes: number of training speakers.
        val_trials: trial list of the validation set (``enroll test target|nontarget``).
        config: the resolved run config, saved in checkpoints for rebuilding.
    """

    def __init__(
        self,
        features: nn.Module,
        net: Callable[..., nn.Module],
        head: Callable[..., nn.Module],
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        scheduler: Callable[..., Any] | None = None,
        val_trials: str | os.PathLike | None = None,
        config: dict | None = None,
    ) -> None:
        super().__init__()
        self.embedder = Embedder(features, net(in_channels=features.out_dim))
        self.head = head(in_dim=self.embedder.net.head_in_dim, num_classes=num_classes)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.num_classes = num_classes
        self.val_trials: list[Trial] = read_trials(val_trials) if val_trials else []
        self.config = config
        self._val_utts: list[str] = []
        self._val_embs: list[torch.Tensor] = []

    def forward(self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings ``(B, D)`` of ``wav (B, S)``."""
        return self.embedder(wav, wav_lens)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        embedding = self.embedder(batch["wav"], batch["wav_lens"])
        logits = self.head(self.embedder.net.classifier_input(embedding), batch["labels"])
        loss = F.cross_entropy(logits, batch["labels"])
        acc = (logits.argmax(-1) == batch["labels"]).float().mean()
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", acc, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_utts, self._val_embs = [], []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._val_utts.extend(batch["utts"])
        self._val_embs.append(self.embedder(batch["wav"], batch["wav_lens"]).float().cpu())

    def on_validation_epoch_end(self) -> None:
        if not self.val_trials or not self._val_embs:
            return
        embs = torch.cat(self._val_embs).numpy()
        trials = self.val_trials
        expected = len(self.trainer.val_dataloaders.dataset) if self.trainer.val_dataloaders else None
        if len(self._val_utts) != expected:
            # A limited loop (sanity check, fast_dev_run, limit_val_batches) saw a subset.
            have = set(self._val_utts)
            trials = [t for t in trials if t.enroll in have and t.test in have]
        labels = trial_labels(trials) if trials else np.zeros(0, dtype=bool)
        if labels.all() or not labels.any():
            return  # a subset with a single class has no EER
        metrics = verification_metrics(score_trials(self._val_utts, embs, trials), labels, p_targets=(0.01,))
        self.log("val/eer", metrics["eer"], prog_bar=True)
        self.log("val/min_dcf", metrics["min_dcf_0.01"])

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config
        checkpoint["num_classes"] = self.num_classes


def load_embedder(ckpt_path: str | os.PathLike, map_location: str = "cpu") -> tuple[Embedder, DictConfig]:
    """Rebuild the front-end and net of a training checkpoint from its saved config.

    Returns:
        The :class:`Embedder` in eval mode, and the run's config.

    Raises:
        ValueError: naming the checkpoint when it is missing, unreadable, holds no xvector
            config, or its weights do not fit the net its config describes.
    """
    if not os.path.isfile(ckpt_path):
        raise ValueError(f"{ckpt_path}: checkpoint does not exist")
    try:
        ckpt = torch.load(ckpt_path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(f"{ckpt_path}: cannot read checkpoint ({err})") from err
    if not isinstance(ckpt, dict) or not ckpt.get(CONFIG_KEY):
        raise ValueError(f"{ckpt_path}: not an xvector training checkpoint (no '{CONFIG_KEY}')")
    cfg = OmegaConf.create(ckpt[CONFIG_KEY])
    features = instantiate(cfg.features)
    embedder = Embedder(features, instantiate(cfg.model)(in_channels=features.out_dim))
    prefix = "embedder."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        embedder.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{ckpt_path}: weights do not match the net of its config ({err})") from err
    return embedder.eval(), cfg
