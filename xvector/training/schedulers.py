"""Learning-rate schedules stepped once per optimizer step.

Each factory takes the optimizer and the run's total number of steps (which the Lightning
module supplies at run time), so configs need not know corpus or batch sizes.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_frac: float = 0.05, final_lr_frac: float = 0.01) -> LambdaLR:
    """Linear warm-up over ``warmup_frac`` of the steps, then cosine decay to ``final_lr_frac``.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> s = warmup_cosine(opt, total_steps=100, warmup_frac=0.1)
        >>> [round(s.lr_lambdas[0](t), 3) for t in (0, 10, 100)]
        [0.1, 1.0, 0.01]
    """
    warmup = max(1, int(round(warmup_frac * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return final_lr_frac + (1 - final_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


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
    warmup = int(round(warmup_frac * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return final_lr_frac ** min(1.0, (step - warmup) / max(1, total_steps - warmup))

    return LambdaLR(optimizer, factor)
