"""TimeBudget: the epochs that fit, the schedule shortened with them, the decision kept on resume.

The clock is a fake one that each training step advances by one second, so the decision is
exact: 4 batches per epoch make 4-second epochs.
"""

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from xvector.training import time_budget
from xvector.training.schedulers import WarmupCosineFactor, warmup_cosine
from xvector.training.time_budget import TimeBudget


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _TinySystem(L.LightningModule):
    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.net = torch.nn.Linear(3, 2)
        self.clock = clock
        self.lrs: list[float] = []
        self.step_sec = {}  # epoch -> seconds per step (default 1)

    def training_step(self, batch, batch_idx):
        self.clock.now += self.step_sec.get(self.current_epoch, 1.0)
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0)
        scheduler = warmup_cosine(optimizer, total_steps=int(self.trainer.estimated_stepping_batches),
                                  warmup_frac=0.1, final_lr_frac=0.01)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class _ValidatingSystem(_TinySystem):
    """_TinySystem with a validation step of 3 s."""

    def validation_step(self, batch, batch_idx):
        self.clock.now += 3.0


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)), batch_size=2)


def _val_loader() -> DataLoader:
    """Two validation batches: a 6 s pass at 3 s a step."""
    return DataLoader(TensorDataset(torch.randn(4, 3), torch.zeros(4, dtype=torch.long)), batch_size=2)


def _trainer(tmp_path, budget: TimeBudget, max_epochs: int, **kw) -> L.Trainer:
    return L.Trainer(max_epochs=max_epochs, callbacks=[budget], logger=False, enable_progress_bar=False,
                     enable_model_summary=False, default_root_dir=tmp_path, **kw)


def _fit(tmp_path, clock: _Clock, minutes: float, step_sec: dict[int, float] | None = None,
         max_epochs: int = 20) -> tuple[TimeBudget, _TinySystem, L.Trainer]:
    """Fit _TinySystem under a budget of ``minutes``, epoch ``e``'s steps taking ``step_sec[e]`` s."""
    budget = TimeBudget(minutes=minutes, probe_epochs=3)
    system = _TinySystem(clock)
    system.step_sec = step_sec or {}
    trainer = _trainer(tmp_path, budget, max_epochs=max_epochs)
    trainer.fit(system, train_dataloaders=_loader())
    return budget, system, trainer


def _rates(shortened: WarmupCosineFactor) -> list[float]:
    """The 28 rates of the cut run: the 80-step schedule's for the 12 steps before the decision
    (after epoch 3), the shortened one's from step 12 on."""
    planned = WarmupCosineFactor(total_steps=80, warmup=8, final_lr_frac=0.01)
    return [planned(s) for s in range(12)] + [shortened(s) for s in range(12, 28)]


@pytest.fixture
def clock(monkeypatch) -> _Clock:
    c = _Clock()
    monkeypatch.setattr(time_budget.time, "perf_counter", c)
    return c


def test_epochs_that_fit_known_values():
    b = TimeBudget(minutes=1.0)
    assert b.epochs_that_fit(epochs_done=3, elapsed_sec=12.0, epoch_sec=4.0) == 3 + 12  # 48 s left
    assert b.epochs_that_fit(epochs_done=3, elapsed_sec=59.0, epoch_sec=4.0) == 3       # < 1 epoch left
    assert b.epochs_that_fit(epochs_done=3, elapsed_sec=75.0, epoch_sec=4.0) == 3       # overrun already
    with pytest.raises(ValueError, match="minutes must be positive"):
        TimeBudget(minutes=0)
    with pytest.raises(ValueError, match="probe_epochs"):
        TimeBudget(minutes=1, probe_epochs=0)


def test_cuts_epochs_and_anneals_over_the_ones_that_fit(tmp_path, clock):
    """30 s budget, 4 s epochs: after 3 probe epochs (12 s) 4 more fit, so 7 of the 20 run, and
    the cosine reaches its final rate at the 28th and last step instead of the 80th."""
    budget, system, trainer = _fit(tmp_path, clock, 0.5)
    assert budget.decided_max_epochs == 7
    assert trainer.current_epoch == 7 and len(system.lrs) == 28
    factor = trainer.lr_scheduler_configs[0].scheduler.lr_lambdas[0]
    assert factor.total_steps == 28 and factor.warmup == 8  # the warm-up kept its 10 % of 80 steps
    torch.testing.assert_close(torch.tensor(system.lrs), torch.tensor(_rates(factor)))
    assert factor(28) == pytest.approx(0.01)
    assert clock.now <= 30.0


def test_epochs_that_slow_down_shorten_the_run_again(tmp_path, clock):
    """Decided 7 epochs at 4 s; epochs 4 and 5 take 8 s: after epoch 4 (20 s spent, median 4 s)
    6 fit, after epoch 5 (28 s spent) none more: it stops at 5, in budget."""
    budget, _, trainer = _fit(tmp_path, clock, 0.5, {3: 2.0, 4: 2.0, 5: 2.0, 6: 2.0})
    assert budget.decided_max_epochs == 5 and trainer.current_epoch == 5
    assert clock.now == 28.0
    assert trainer.lr_scheduler_configs[0].scheduler.lr_lambdas[0].total_steps == 20


def test_a_few_slow_epochs_do_not_cut_the_run_for_good(tmp_path, clock):
    """60 s, 4 s epochs, the 5th and 6th take 8 s (another job for a while): the median over the
    last 9 epochs stays 4 s, so 13 epochs run and end at 60 s. A median of the last 3 would have
    said 8 s after the 6th and stopped at 9, with 16 s unspent."""
    budget, _, trainer = _fit(tmp_path, clock, 1.0, {4: 2.0, 5: 2.0})
    assert budget.decided_max_epochs == 13 and trainer.current_epoch == 13
    assert clock.now == 60.0
    with pytest.raises(ValueError, match="renew_window"):
        TimeBudget(minutes=1, renew_window=0)


def test_slow_probe_epochs_do_not_cut_the_run_for_good(tmp_path, clock):
    """60 s, 4 s epochs, but the 2nd and 3rd (the probe) take 8 s: after them (20 s) 8 epochs fit.
    After epoch 4 the median of 4, 8, 8, 4 says 6 s, 10 fit, and after epoch 5 4 s, 13 fit: each
    at least 10 % more than planned, within the first half of the run, so the run is lengthened
    (schedule too: 80 steps -> 32 -> 40 -> 52) and ends at 60 s instead of stopping at 40."""
    budget, _, trainer = _fit(tmp_path, clock, 1.0, {1: 2.0, 2: 2.0})
    assert budget.decided_max_epochs == 13 and trainer.current_epoch == 13
    assert clock.now == 60.0
    factor = trainer.lr_scheduler_configs[0].scheduler.lr_lambdas[0]
    assert factor.total_steps == 52 and factor(52) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="regrow_frac"):
        TimeBudget(minutes=1, regrow_frac=0)


def test_no_lengthening_in_the_second_half_of_the_run(tmp_path, clock):
    """Epochs 2-5 take 8 s, then 4 s: 8 epochs are decided after the probe, and when the median
    falls enough for 9 to fit (after epoch 7) most of the run is done: it keeps 8 (48 s)."""
    budget, _, trainer = _fit(tmp_path, clock, 1.0, {1: 2.0, 2: 2.0, 3: 2.0, 4: 2.0})
    assert budget.decided_max_epochs == 8 and trainer.current_epoch == 8
    assert clock.now == 48.0
    assert trainer.lr_scheduler_configs[0].scheduler.lr_lambdas[0].total_steps == 32


def test_validation_passes_are_spread_over_the_epochs(tmp_path, clock):
    """4 s epochs and a 6 s validation pass every 3rd epoch: the pass is not an epoch of 10 s
    (the median of 4, 10 would say 7 s and stop at 4 epochs, 8 s unspent) but 2 s per epoch
    done: after epoch 3 (18 s) 5 fit, and the renewals (5.5, 5.2 s) keep 5, ending at 26 s."""
    budget = TimeBudget(minutes=0.5, probe_epochs=3)
    system = _ValidatingSystem(clock)
    trainer = _trainer(tmp_path, budget, max_epochs=20, check_val_every_n_epoch=3, num_sanity_val_steps=0)
    trainer.fit(system, train_dataloaders=_loader(), val_dataloaders=_val_loader())
    assert budget.decided_max_epochs == 5 and trainer.current_epoch == 5
    assert clock.now == 26.0


def test_a_budget_that_fits_changes_nothing(tmp_path, clock):
    budget, _, trainer = _fit(tmp_path, clock, 10.0, max_epochs=5)
    assert budget.decided_max_epochs == 5 and trainer.current_epoch == 5
    assert trainer.lr_scheduler_configs[0].scheduler.lr_lambdas[0].total_steps == 20


def test_off_by_default(tmp_path, clock):
    budget = TimeBudget()
    trainer = _trainer(tmp_path, budget, max_epochs=4)
    trainer.fit(_TinySystem(clock), train_dataloaders=_loader())
    assert budget.decided_max_epochs is None and trainer.current_epoch == 4


def test_resume_keeps_the_decision_and_the_shortened_schedule(tmp_path, clock):
    """Killed after epoch 5 of the 7 that fit: the resumed run (same config: 20 epochs) ends at 7,
    on the same learning rates as an uninterrupted run."""
    first = TimeBudget(minutes=0.5)
    system = _TinySystem(clock)

    class _StopAfter(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch + 1 == 5:
                trainer.should_stop = True

    trainer = _trainer(tmp_path, first, max_epochs=20)
    trainer.callbacks.append(_StopAfter())
    trainer.fit(system, train_dataloaders=_loader())
    assert first.decided_max_epochs == 7 and trainer.current_epoch == 5
    ckpt = tmp_path / "killed.ckpt"
    trainer.save_checkpoint(ckpt)

    resumed_budget = TimeBudget(minutes=0.5)
    resumed = _TinySystem(clock)
    trainer2 = _trainer(tmp_path, resumed_budget, max_epochs=20)
    trainer2.fit(resumed, train_dataloaders=_loader(), ckpt_path=ckpt)
    assert resumed_budget.decided_max_epochs == 7 and trainer2.current_epoch == 7
    factor = trainer2.lr_scheduler_configs[0].scheduler.lr_lambdas[0]
    assert factor.total_steps == 28 and factor.warmup == 8
    torch.testing.assert_close(torch.tensor(system.lrs + resumed.lrs), torch.tensor(_rates(factor)))
