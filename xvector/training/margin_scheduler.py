"""Margin warm-up: ramp a margin head's ``margin`` from a start value to its target.

Training with the full margin from the first step can stall a randomly initialised net (the
target logit starts out far below the others); WeSpeaker therefore ramps ArcFace's margin
0 → 0.2 between two epochs (``increase_start_epoch`` / ``fix_start_epoch``). This callback does
the same for any head with a ``margin`` attribute, linearly and **per training step**: at
fractional epoch ``e = epoch + batch / batches_per_epoch`` the margin is

    initial_margin                                                  for e <= start_epoch
    initial_margin + (e - start_epoch) / (end_epoch - start_epoch) * (final - initial)
    final_margin                                                    for e >= end_epoch

The value depends only on the position in training, so resuming from a checkpoint restores it.
It is logged as ``train/margin``. From config, an experiment adds::

    callbacks:
      margin_scheduler:
        _target_: xvector.training.margin_scheduler.MarginScheduler
        start_epoch: 1
        end_epoch: 4

Example:
    >>> sched = MarginScheduler(start_epoch=2, end_epoch=4, initial_margin=0.0, final_margin=0.2)
    >>> [round(sched.margin_at(e), 3) for e in (0, 2, 3, 3.5, 4, 10)]
    [0.0, 0.0, 0.1, 0.15, 0.2, 0.2]
"""

from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.callbacks import Callback


class MarginScheduler(Callback):
    """Linear, step-wise margin ramp for ``pl_module.head.margin``.

    Args:
        start_epoch: epoch (may be fractional) at which the ramp starts; before it the margin is
            ``initial_margin``.
        end_epoch: epoch at which the margin reaches ``final_margin`` and stays.
        initial_margin: margin before and at ``start_epoch`` (0 in WeSpeaker).
        final_margin: margin from ``end_epoch`` on; ``None`` takes the head's configured
            ``margin`` (read when fitting starts), so the head config stays the one source.
    """

    def __init__(
        self,
        start_epoch: float = 0.0,
        end_epoch: float = 1.0,
        initial_margin: float = 0.0,
        final_margin: float | None = None,
    ) -> None:
        super().__init__()
        if start_epoch < 0 or end_epoch < start_epoch:
            raise ValueError(f"need 0 <= start_epoch <= end_epoch, got {start_epoch} and {end_epoch}")
        if initial_margin < 0 or (final_margin is not None and final_margin < 0):
            raise ValueError(f"margins must be >= 0, got {initial_margin} and {final_margin}")
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.initial_margin = initial_margin
        self.final_margin = final_margin

    def margin_at(self, epoch: float) -> float:
        """Margin at fractional epoch ``epoch`` (needs ``final_margin``, given or read from the head)."""
        if self.final_margin is None:
            raise ValueError("final_margin is unknown until fitting starts (or pass final_margin)")
        if epoch >= self.end_epoch:
            return self.final_margin
        if epoch <= self.start_epoch:
            return self.initial_margin
        progress = (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch)
        return self.initial_margin + progress * (self.final_margin - self.initial_margin)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        head = getattr(pl_module, "head", None)
        if head is None or not hasattr(head, "margin"):
            raise ValueError(
                f"MarginScheduler needs a margin head (pl_module.head.margin); got head {type(head).__name__}"
            )
        if self.final_margin is None:
            self.final_margin = float(head.margin)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        per_epoch = trainer.num_training_batches
        fraction = batch_idx / per_epoch if per_epoch and math.isfinite(per_epoch) else 0.0
        margin = self.margin_at(trainer.current_epoch + fraction)
        pl_module.head.margin = margin
        pl_module.log("train/margin", margin, on_step=True, on_epoch=False)
