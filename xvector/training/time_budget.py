"""Time budget: train the epochs that fit in a wall-clock budget, with the whole schedule.

A recipe that promises "≤ 12 minutes of training" cannot know the machine: a slower host or a
busier one makes a fixed epoch count overrun. ``Trainer(max_time=...)`` stops in time but cuts
the learning-rate schedule where it stands (a cosine still at half its rate). This callback
instead times the first ``probe_epochs`` epochs and, if ``max_epochs`` would not fit in
``minutes``, lowers ``max_epochs`` to the epochs that do and shortens the step-wise learning-rate
schedule to match (``total_steps`` of :mod:`xvector.training.schedulers`' factors; the warm-up
keeps its length), so the run still anneals to its final rate. It never runs more than the
configured epochs: on a fast machine the configured schedule runs as it is.

The clock starts when fitting starts (after the data and net are built), so the budget covers
the sanity check, the training epochs and the validation passes met so far. An epoch's cost is
its training time - the median of the probe epochs after the first (which also pays for worker
start-up), validation excluded - plus the validation time spent so far spread over the epochs
done (a pass every 25 epochs costs each epoch 1/25 of a pass, not the whole pass in the epoch it
falls in). After that decision the estimate is renewed at every epoch's end from the median of
the last ``renew_window`` epochs, and the run is shortened again if it would overrun. The window is
long enough that a few slow epochs (another job on the host for a minute) do not cut a run for
good, and the elapsed time is always the clock's, so a lasting slowdown still shortens the run in
time. A slowdown during the probe epochs themselves would otherwise cut the run for good (on 2
cores a few seconds of another job during the probe turned 85 epochs into 54), so the run is
also lengthened again, up to the configured epochs, when the renewed estimate fits at least
``regrow_frac`` more epochs than the plan and at most half of the lengthened plan has run (the
learning rate is then still high, so stretching the schedule is harmless; later a run keeps its
plan rather than warm up again; a resumed run, whose clock starts at the resume, only shortens).
The decision is saved in checkpoints, so a resumed run keeps it (a run killed before deciding
measures again after the resume, from the resume). From config::

    callbacks:
      time_budget:
        _target_: xvector.training.time_budget.TimeBudget
        minutes: 10

Example:
    >>> TimeBudget(minutes=10).epochs_that_fit(epochs_done=3, elapsed_sec=40.0, epoch_sec=4.5)
    127
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

RENEW_WINDOW = 9  # epochs whose median renews the estimate after the decision
REGROW_FRAC = 0.1  # a run is lengthened again only when at least this much more fits


def epochs_that_fit(budget_sec: float, epochs_done: int, elapsed_sec: float, epoch_sec: float) -> int:
    """Epochs in all (done + still to run) that fit ``budget_sec`` after ``elapsed_sec``, at
    ``epoch_sec`` per epoch (all in seconds); never fewer than ``epochs_done``."""
    left = budget_sec - elapsed_sec
    return epochs_done + (math.floor(left / epoch_sec) if epoch_sec > 0 and left > 0 else 0)


def replan(planned: int, fit: int, epochs_done: int, regrow_frac: float, may_regrow: bool = True) -> int:
    """The epochs to plan now that ``fit`` epochs fit the budget and ``epochs_done`` have run.

    Fewer than planned fit: ``fit`` (shorten). More fit: ``fit`` only while a run may still
    grow, at least ``regrow_frac`` more fit and at most half of the lengthened run has run (its
    learning rate is still high); else the plan stays (a little more, or too late).

    Example:
        >>> replan(22, 31, 2, 0.1), replan(22, 23, 2, 0.1), replan(22, 31, 16, 0.1), replan(22, 18, 16, 0.1)
        (31, 22, 22, 18)
    """
    if fit > planned and not (may_regrow and fit >= planned * (1 + regrow_frac) and 2 * epochs_done <= fit):
        return planned
    return fit


class TimeBudget(Callback):
    """Lower ``max_epochs`` (and the learning-rate schedule with it) to what fits in ``minutes``.

    Args:
        minutes: wall-clock budget of the fit; ``None`` turns the callback off.
        probe_epochs: epochs timed before deciding (the first one is not used for the epoch
            time unless it is the only one).
        renew_window: epochs whose median training time renews the estimate after the decision.
        regrow_frac: a shortened run is lengthened again (up to the configured epochs, in its
            first half) when at least this fraction more epochs fit than it plans.
    """

    def __init__(self, minutes: float | None = None, probe_epochs: int = 3, renew_window: int = RENEW_WINDOW,
                 regrow_frac: float = REGROW_FRAC) -> None:
        super().__init__()
        if minutes is not None and not minutes > 0:
            raise ValueError(f"time budget: minutes must be positive, got {minutes}")
        if probe_epochs < 1:
            raise ValueError(f"time budget: probe_epochs must be >= 1, got {probe_epochs}")
        if renew_window < 1:
            raise ValueError(f"time budget: renew_window must be >= 1, got {renew_window}")
        if not regrow_frac > 0:
            raise ValueError(f"time budget: regrow_frac must be positive, got {regrow_frac}")
        self.minutes = minutes
        self.probe_epochs = probe_epochs
        self.renew_window = renew_window
        self.regrow_frac = regrow_frac
        self.decided_max_epochs: int | None = None
        self._configured_epochs = 0  # the trainer's max_epochs before any decision
        self._may_regrow = True
        self._fit_start = 0.0
        self._epoch_start = 0.0
        self._durations: list[float] = []  # training time of each epoch, validation excluded
        self._val_start = 0.0
        self._epoch_val_sec = 0.0  # validation inside the current epoch
        self._val_sec = 0.0  # all validation passes of this fit (not the sanity check)

    def epochs_that_fit(self, epochs_done: int, elapsed_sec: float, epoch_sec: float) -> int:
        """:func:`epochs_that_fit` of this budget."""
        return epochs_that_fit(self.minutes * 60.0, epochs_done, elapsed_sec, epoch_sec)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.minutes is None:
            return
        self._fit_start = time.perf_counter()
        self._durations = []
        self._val_sec = 0.0
        self._configured_epochs = trainer.max_epochs
        # the clock of a resumed fit starts at the resume, so it only ever shortens its decision
        self._may_regrow = self.decided_max_epochs is None
        if self.decided_max_epochs is not None:  # resumed after the decision: keep it
            trainer.fit_loop.max_epochs = min(trainer.max_epochs, self.decided_max_epochs)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._epoch_val_sec = 0.0

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.minutes is None or trainer.sanity_checking:
            return
        spent = time.perf_counter() - self._val_start
        self._epoch_val_sec += spent
        self._val_sec += spent

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.minutes is None:
            return
        now = time.perf_counter()
        self._durations.append(now - self._epoch_start - self._epoch_val_sec)
        if self.decided_max_epochs is None and len(self._durations) < self.probe_epochs:
            return
        # Probe epochs after the first one; later, the last few epochs (epochs can slow down as
        # a run goes on: a busier host, a warmer CPU), so the estimate follows them.
        recent = self._durations[1:] if self.decided_max_epochs is None else self._durations[-self.renew_window:]
        done = trainer.current_epoch + 1
        # validation amortised over the epochs this fit ran (a resumed fit counts from its resume)
        val_per_epoch = self._val_sec / len(self._durations)
        epoch_sec = statistics.median(recent or self._durations) + val_per_epoch
        planned = trainer.max_epochs
        configured = self._configured_epochs
        fit = min(configured, self.epochs_that_fit(done, now - self._fit_start, epoch_sec))
        first = self.decided_max_epochs is None
        fit = replan(planned, fit, done, self.regrow_frac, may_regrow=self._may_regrow)
        self.decided_max_epochs = fit
        if fit == planned:
            if first:
                log.info("time budget %.1f min: all %d epochs fit (%.1f s each)", self.minutes, planned, epoch_sec)
            return
        trainer.fit_loop.max_epochs = fit
        changed = _scale_schedules(trainer, fit / planned)
        verb = "shortened" if fit < planned else "lengthened"
        log.info(
            "time budget %.1f min: %d of the %d epochs fit (%.1f s each); training %d epochs%s",
            self.minutes, fit, configured, epoch_sec, fit,
            f", the learning-rate schedule {verb} to match" if changed
            else (f" (this learning-rate schedule cannot be {verb}: it stops where it stands)"
                  if trainer.lr_scheduler_configs else ""),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"decided_max_epochs": self.decided_max_epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.decided_max_epochs = state_dict.get("decided_max_epochs")


def _scale_schedules(trainer: L.Trainer, fraction: float) -> bool:
    """Scale ``total_steps`` of every step-wise schedule factor by ``fraction`` and set the
    current rates from the scaled schedule; True if any factor could be scaled."""
    found = False
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        factors = getattr(scheduler, "lr_lambdas", [])
        if not any(hasattr(f, "total_steps") for f in factors):
            continue
        for factor in factors:
            if hasattr(factor, "total_steps"):
                factor.total_steps = max(1, round(factor.total_steps * fraction))
        for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, factors):
            group["lr"] = base * factor(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
        found = True
    return found
