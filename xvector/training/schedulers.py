"""Learning-rate schedules stepped once per optimizer step.

Each factory takes the optimizer and the run's total number of steps (which the Lightning
module supplies at run time), so configs need not know corpus or batch sizes. The step → factor
functions are small objects with a ``total_steps`` attribute rather than closures, for two
reasons: ``LambdaLR`` saves and restores an object's attributes with its state (a closure's are
lost), and :class:`xvector.training.time_budget.TimeBudget` can shorten a run after it started
by setting ``total_steps`` (the warm-up keeps its length).
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class _WarmupFactor:
    """Step → learning-rate factor: linear warm-up over ``warmup`` steps, then ``decay(progress)``
    from 1 to ``final_lr_frac`` as progress goes 0 → 1 at ``total_steps`` (held after it)."""

    def __init__(self, total_steps: int, warmup: int, final_lr_frac: float) -> None:
        self.total_steps, self.warmup, self.final_lr_frac = total_steps, warmup, final_lr_frac

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        return self.decay(min(1.0, (step - self.warmup) / max(1, self.total_steps - self.warmup)))

    def decay(self, progress: float) -> float:
        raise NotImplementedError


class WarmupCosineFactor(_WarmupFactor):
    """Warm-up, then a cosine from 1 to ``final_lr_frac``."""

    def decay(self, progress: float) -> float:
        return self.final_lr_frac + (1 - self.final_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_frac: float = 0.05, final_lr_frac: float = 0.01) -> LambdaLR:
    """Linear warm-up over ``warmup_frac`` of the steps, then cosine decay to ``final_lr_frac``.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> s = warmup_cosine(opt, total_steps=100, warmup_frac=0.1)
        >>> [round(s.lr_lambdas[0](t), 3) for t in (0, 10, 100)]
        [0.1, 1.0, 0.01]
    """
    return LambdaLR(optimizer, WarmupCosineFactor(total_steps, max(1, int(round(warmup_frac * total_steps))), final_lr_frac))


class ExponentialFactor(_WarmupFactor):
    """Warm-up, then exponential decay from 1 to ``final_lr_frac``."""

    def decay(self, progress: float) -> float:
        return self.final_lr_frac ** progress


def exponential_decay(
    optimizer: Optimizer, total_steps: int, final_lr_frac: float = 0.01, warmup_frac: float = 0.0
) -> LambdaLR:
    """Optional linear warm-up over ``warmup_frac`` of the steps, then exponential decay from
    the initial rate to ``final_lr_frac`` of it at the last step (WeSpeaker's ExponentialDecrease
    with ``warm_up_epoch``; 6 of 150 epochs there is ``warmup_frac=0.04``).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> s = exponential_decay(opt, total_steps=110, final_lr_frac=0.01, warmup_frac=10 / 110)
        >>> [round(s.lr_lambdas[0](t), 3) for t in (0, 9, 10, 60, 110)]
        [0.1, 1.0, 1.0, 0.1, 0.01]
    """
    return LambdaLR(optimizer, ExponentialFactor(total_steps, int(round(warmup_frac * total_steps)), final_lr_frac))
