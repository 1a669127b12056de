"""One log line per training epoch, for logs that are not terminals.

Lightning's progress bar redraws itself in place: fine on a terminal, thousands of carriage
returns in a recipe's log file. ``trainer.enable_progress_bar=null`` (the default) shows the bar
only when stderr is a terminal (:func:`progress_bar_enabled`), and :class:`EpochSummary` logs,
either way, what a Kaldi log would show per iteration:

    epoch 3/12 in 41.2 s (1830 crops/s, data wait 4%): train/loss 2.31, train/acc 0.531 (epoch means), val/eer 0.0812, lr 0.0012

It also logs, per epoch, ``perf/crops_per_s`` (training crops per second of the training loop,
all ranks together) and ``perf/data_wait_frac``: the share of the training loop's time spent
between one step's end and the next step's start, waiting for the loader's next batch (and its
copy to the device). Near 0 the model is the bottleneck; near 1 the data path starves it. The
epoch means are summed on the device and read once per epoch, so the callback adds no host sync
to the steps (a wait the GPU would show as idle time).
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
    """Logs the epoch number, its wall time, throughput, data wait and the epoch's metrics (rank 0)."""

    def __init__(self) -> None:
        self._start = self._last_end = 0.0
        self._wait = 0.0
        self._crops = 0
        self._sums: torch.Tensor | None = None  # (3,): finite batches, their loss and accuracy sums
        self._has_acc = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last_end = time.perf_counter()
        self._wait, self._crops, self._sums = 0.0, 0, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._wait += time.perf_counter() - self._last_end  # fetch + copy of this batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._last_end = time.perf_counter()
        labels = batch.get("labels") if isinstance(batch, dict) else None
        self._crops += int(labels.shape[0]) if isinstance(labels, torch.Tensor) else 0
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not (isinstance(loss, torch.Tensor) and loss.numel() == 1):
            return
        loss = loss.detach().float().reshape(())
        # (not trainer.callback_metrics: reading it converts the progress-bar metrics with .item())
        acc = outputs.get("acc") if isinstance(outputs, dict) else None
        self._has_acc = self._has_acc or isinstance(acc, torch.Tensor)
        acc = acc.detach().float().reshape(()).to(loss.device) if isinstance(acc, torch.Tensor) else torch.zeros_like(loss)
        finite = torch.isfinite(loss)  # a skipped batch counts in neither mean
        step = torch.where(finite, torch.stack([torch.ones_like(loss), loss, acc]), torch.zeros(3, device=loss.device))
        self._sums = step if self._sums is None else self._sums + step

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._start
        train_seconds = self._last_end - self._start  # the training loop alone (validation excluded)
        crops_per_s = self._crops * max(1, trainer.world_size) / train_seconds if self._crops and train_seconds > 0 else 0.0
        wait_frac = min(1.0, self._wait / train_seconds) if train_seconds > 0 else 0.0
        if not trainer.is_global_zero:
            return
        pl_module.log("perf/crops_per_s", crops_per_s, rank_zero_only=True)
        pl_module.log("perf/data_wait_frac", wait_frac, rank_zero_only=True)
        n, loss_sum, acc_sum = self._sums.tolist() if self._sums is not None else (0.0, 0.0, 0.0)  # one sync per epoch
        metrics = trainer.callback_metrics
        means = {"train/loss": loss_sum / n, "train/acc": acc_sum / n} if n else {}
        if not self._has_acc:
            means.pop("train/acc", None)
        parts = [f"{key} {value:.4g}" for key, value in means.items()]
        if parts:
            parts[-1] += " (epoch means)"
        for key in (k for k in SHOWN if k not in means):
            for name in (key, f"{key}_epoch"):
                if name in metrics:
                    parts.append(f"{key} {float(metrics[name]):.4g}")
                    break
        lrs = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
        if lrs:
            parts.append(f"lr {lrs[0]:.3g}")
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        rate = f" ({crops_per_s:.0f} crops/s, data wait {100 * wait_frac:.0f}%)" if self._crops and train_seconds > 0 else ""
        log.info("epoch %d%s in %.1f s%s: %s", trainer.current_epoch + 1, total, seconds, rate, ", ".join(parts))
