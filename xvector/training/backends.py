"""GPU backend settings for training: cuDNN autotuning and TF32, set for CUDA runs only.

Training crops all have one size, so ``torch.backends.cudnn.benchmark`` times cuDNN's
algorithms once per layer shape and keeps the fastest: untuned, one measured H200 run spent
72 ms per step in an FFT weight-gradient kernel for a single layer. Validation embeds whole
utterances of every length, where each new shape would be timed again, so autotuning is off
while validating. ``matmul_precision`` is :func:`torch.set_float32_matmul_precision`'s:
``"high"`` lets float32 matrix products and (through ``torch.backends.cudnn.allow_tf32``)
convolutions run on TF32 tensor cores (10 mantissa bits in the products, float32 sums);
``"highest"`` keeps both in full float32. Nothing is set when the run's device is not a CUDA
GPU, and the previous settings come back when fitting ends.

    xvector-train ... matmul_precision=highest cudnn_benchmark=false   # float32 throughout, untuned
"""

from __future__ import annotations

import lightning as L
import torch

PRECISIONS = ("highest", "high", "medium")


def apply_cuda_settings(cudnn_benchmark: bool, matmul_precision: str) -> tuple[bool, str, bool]:
    """Set cuDNN autotuning and the float32 matmul/conv precision; returns the previous settings."""
    if matmul_precision not in PRECISIONS:
        raise ValueError(f"matmul_precision={matmul_precision!r}: expected one of {PRECISIONS}")
    previous = (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    torch.set_float32_matmul_precision(matmul_precision)
    torch.backends.cudnn.allow_tf32 = matmul_precision != "highest"
    return previous


class CudaSettings(L.Callback):
    """cuDNN autotuning for the training crops (off during validation) and the float32 precision.

    Args:
        cudnn_benchmark: let cuDNN time its algorithms for the fixed-size training crops.
        matmul_precision: ``"high"`` (TF32 matmuls and convolutions), ``"highest"`` (float32)
            or ``"medium"`` (bfloat16 products as well).
    """

    def __init__(self, cudnn_benchmark: bool = True, matmul_precision: str = "high") -> None:
        if matmul_precision not in PRECISIONS:
            raise ValueError(f"matmul_precision={matmul_precision!r}: expected one of {PRECISIONS}")
        self.cudnn_benchmark, self.matmul_precision = bool(cudnn_benchmark), matmul_precision
        self._previous: tuple[bool, str, bool] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.strategy.root_device.type == "cuda" and self._previous is None:
            self._previous = apply_cuda_settings(self.cudnn_benchmark, self.matmul_precision)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._previous is not None:
            torch.backends.cudnn.benchmark = self.cudnn_benchmark

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._previous is not None:
            torch.backends.cudnn.benchmark = False  # every utterance length is a new shape

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._previous is not None and trainer.state.fn == "fit":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark  # a mid-epoch check: training goes on

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous is not None:
            benchmark, precision, allow_tf32 = self._previous
            torch.backends.cudnn.benchmark = benchmark
            torch.set_float32_matmul_precision(precision)
            torch.backends.cudnn.allow_tf32 = allow_tf32
            self._previous = None
