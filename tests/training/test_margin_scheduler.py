from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from xvector.losses.margin import AAMSoftmax
from xvector.training.margin_scheduler import MarginScheduler


def test_margin_at_known_values():
    sched = MarginScheduler(start_epoch=1, end_epoch=3, initial_margin=0.05, final_margin=0.25)
    got = [sched.margin_at(e) for e in (0.0, 1.0, 1.5, 2.0, 2.75, 3.0, 7.0)]
    torch.testing.assert_close(torch.tensor(got), torch.tensor([0.05, 0.05, 0.1, 0.15, 0.225, 0.25, 0.25]))
    step = MarginScheduler(start_epoch=2, end_epoch=2, final_margin=0.2)  # no ramp: a step at epoch 2
    assert [step.margin_at(e) for e in (1.9, 2.0)] == [0.0, 0.2]


def test_hooks_set_head_margin_per_step():
    """4 batches per epoch, ramp over epochs 1-2: step k sits at fractional epoch k / 4."""
    sched = MarginScheduler(start_epoch=1, end_epoch=2)
    logged = {}
    module = SimpleNamespace(head=AAMSoftmax(4, 3, margin=0.2), log=lambda k, v, **_: logged.__setitem__(k, v))
    sched.on_fit_start(None, module)
    assert sched.final_margin == 0.2  # taken from the head config
    margins = []
    for epoch in range(3):
        for batch_idx in range(4):
            trainer = SimpleNamespace(num_training_batches=4, current_epoch=epoch)
            sched.on_train_batch_start(trainer, module, None, batch_idx)
            margins.append(module.head.margin)
    expected = [0.0] * 5 + [0.05, 0.1, 0.15] + [0.2] * 4
    torch.testing.assert_close(torch.tensor(margins), torch.tensor(expected))
    assert logged["train/margin"] == pytest.approx(0.2)


def test_needs_a_margin_head_and_valid_epochs():
    with pytest.raises(ValueError, match="margin head"):
        MarginScheduler().on_fit_start(None, SimpleNamespace(head=torch.nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="start_epoch"):
        MarginScheduler(start_epoch=3, end_epoch=1)
    with pytest.raises(ValueError, match="final_margin is unknown"):
        MarginScheduler().margin_at(0.5)


class _TinySystem(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 4)
        self.head = AAMSoftmax(4, 2, scale=8.0, margin=0.3)
        self.seen: list[float] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen.append(self.head.margin)
        return F.cross_entropy(self.head(self.net(x), y), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.arange(16) % 2)
        return torch.utils.data.DataLoader(data, batch_size=4)  # 4 steps per epoch


def test_ramps_inside_a_lightning_fit(tmp_path):
    system = _TinySystem()
    trainer = L.Trainer(
        max_epochs=3, callbacks=[MarginScheduler(start_epoch=0.5, end_epoch=2)], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )
    trainer.fit(system)
    expected = [0.0, 0.0, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.3, 0.3, 0.3]  # (epoch - 0.5) / 1.5 * 0.3
    torch.testing.assert_close(torch.tensor(system.seen), torch.tensor(expected), atol=1e-6, rtol=1e-6)
