"""Non-finite training losses, found without making the step wait for the device.

``bool(torch.isfinite(loss))`` copies a flag from the GPU every step, so the host waits for the
whole step's kernels before it may queue the next batch's: the GPU then idles while the host
fetches, transfers and launches. :class:`NanGuard` keeps the flag on the device instead
(all-reduced across DDP ranks as a tensor, which queues like any kernel) and looks at the
flags of the steps since its last look every ``every_n_steps`` steps, at the end of each epoch
and before each checkpoint: one host sync per check, not per step.

What the policies keep: ``error`` still stops with a ``FloatingPointError`` naming the global
step, epoch, batch and utterances of the first non-finite loss (up to ``every_n_steps`` steps
later; a checkpoint is never written after it). ``skip`` still drops such a batch on every
rank: the training step restores the batch-norm statistics with ``torch.where`` on the flag,
and a fused optimizer (``torch.optim.Adam(fused=True)`` and the like, which take a
``found_inf`` tensor as ``GradScaler`` gives them) leaves weights, moments and step count as
they were; the count and the warning come at the next check.

Example:
    >>> import torch
    >>> guard = NanGuard("skip", every_n_steps=10)
    >>> bad = guard.record(torch.tensor(float("nan")), step=4, epoch=0, batch_idx=4, utts=["u1", "u2"])
    >>> bool(bad), guard.due
    (True, False)
    >>> guard.resolve()
    1
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger("xvector.training.system")
POLICIES = ("error", "skip")


def nonfinite_message(value: str, step: int, epoch: int, batch_idx: int, utts: list[str]) -> str:
    """What a non-finite loss reports: the loss (or "on another rank; <this rank's> here"), where and which utterances."""
    return (f"non-finite training loss ({value}) at global step {step} (epoch {epoch}, batch {batch_idx}); "
            f"utterances: {', '.join(utts)}")


def any_rank(flag: torch.Tensor) -> torch.Tensor:
    """``flag`` (a 0-dim bool tensor) or-ed over the DDP ranks, without a host sync (as itself alone)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return flag
    if torch.distributed.get_world_size() == 1:
        return flag
    shared = flag.float()  # gloo reduces no bools
    torch.distributed.all_reduce(shared, op=torch.distributed.ReduceOp.MAX)
    return shared > 0


@dataclass
class _Step:
    step: int
    epoch: int
    batch_idx: int
    utts: list[str]
    flags: torch.Tensor  # (3,): loss, bad here, bad on any rank


class NanGuard:
    """Device-side non-finite-loss flags of the training steps, looked at every ``every_n_steps``.

    Args:
        policy: ``"error"`` or ``"skip"`` (see :class:`~xvector.training.system.SpeakerSystem`).
        every_n_steps: steps between two looks at the flags (each look is one host sync).
    """

    def __init__(self, policy: str, every_n_steps: int = 100) -> None:
        if policy not in POLICIES:
            raise ValueError(f"nan_policy={policy!r}: expected one of {POLICIES}")
        if every_n_steps < 1:
            raise ValueError(f"nan_check_every_n_steps must be >= 1, got {every_n_steps}")
        self.policy, self.every_n_steps = policy, int(every_n_steps)
        self.pending: list[_Step] = []

    def record(self, loss: torch.Tensor, step: int, epoch: int, batch_idx: int, utts: list[str]) -> torch.Tensor:
        """Note this step's loss; returns the 0-dim bool "non-finite on some rank" (on the loss's device)."""
        loss = loss.detach().float()
        here = ~torch.isfinite(loss)
        anywhere = any_rank(here)
        self.pending.append(_Step(step, epoch, batch_idx, list(utts), torch.stack([loss, here.float(), anywhere.float()])))
        return anywhere

    @property
    def due(self) -> bool:
        return len(self.pending) >= self.every_n_steps

    def resolve(self) -> int:
        """Look at the pending flags (one host sync): returns how many steps were skipped.

        Raises:
            FloatingPointError: with ``policy="error"``, naming the first non-finite step.
        """
        if not self.pending:
            return 0
        pending, self.pending = self.pending, []
        values = torch.stack([p.flags for p in pending]).tolist()
        skipped = 0
        for p, (loss, here, anywhere) in zip(pending, values):
            if not anywhere:
                continue
            value = f"{loss}" if here else f"on another rank; {loss:.4f} here"
            where = nonfinite_message(value, p.step, p.epoch, p.batch_idx, p.utts)
            if self.policy == "error":
                raise FloatingPointError(f"{where}. Set nan_policy=skip to skip such batches.")
            skipped += 1
            log.warning("skipped batch: %s", where)
        return skipped
