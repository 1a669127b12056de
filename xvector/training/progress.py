"""One log line per training epoch, for logs that are not terminals.

Lightning's progress bar redraws itself in place: fine on a terminal, thousands of carriage
returns in a recipe's log file. ``trainer.enable_progress_bar=null`` (the default) shows the bar
only when stderr is a terminal (:func:`progress_bar_enabled`), and :class:`EpochSummary` logs,
either way, what a Kaldi log would show per iteration:

    epoch 3/12 in 41.2 s (1830 crops/s): train/loss 2.31, train/acc 0.531 (epoch means), val/eer 0.0812, lr 0.0012
"""

from __future__ import annotations

import logging
import sys
import time

import lightning as L
import torch

log = logging.getLogger("xvector.cli.train")

SHOWN = ("train/loss", "train/acc", "val/eer", "val/min_dcf")


def progress_bar_enabled(setting: bool | None) -> bool:
    """``setting`` when given; otherwise whether stderr is a terminal."""
    if setting is not None:
        return bool(setting)
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class EpochSummary(L.Callback):
    """Logs the epoch number, its wall time, crops per second and the epoch's metrics (rank 0)."""

    def __init__(self) -> None:
        self._start = 0.0
        self._crops = 0
        self._losses: list[float] = []
        self._accs: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._crops, self._losses, self._accs = time.perf_counter(), 0, [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        wav = batch.get("wav") if isinstance(batch, dict) else None
        self._crops += int(wav.shape[0]) if isinstance(wav, torch.Tensor) else 0
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1 and torch.isfinite(loss):
            self._losses.append(float(loss))
            acc = trainer.callback_metrics.get("train/acc")  # this batch's, just logged
            if isinstance(acc, torch.Tensor):
                self._accs.append(float(acc))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        seconds = time.perf_counter() - self._start
        metrics = trainer.callback_metrics
        means = {"train/loss": self._losses, "train/acc": self._accs}
        parts = [f"{key} {sum(v) / len(v):.4g}" for key, v in means.items() if v]
        if parts:
            parts[-1] += " (epoch means)"
        for key in (k for k in SHOWN if not means.get(k)):
            for name in (key, f"{key}_epoch"):
                if name in metrics:
                    parts.append(f"{key} {float(metrics[name]):.4g}")
                    break
        lrs = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
        if lrs:
            parts.append(f"lr {lrs[0]:.3g}")
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        rate = f" ({self._crops / seconds:.0f} crops/s)" if self._crops and seconds > 0 else ""
        log.info("epoch %d%s in %.1f s%s: %s", trainer.current_epoch + 1, total, seconds, rate, ", ".join(parts))
