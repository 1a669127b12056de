"""Resuming: a killed run continues from ``last.ckpt`` to the weights of an uninterrupted run.

Checkpoints carry the RNG states (crops, dither, shuffling, masks), so resuming from an
end-of-epoch ``last.ckpt`` repeats the uninterrupted run exactly; the tests allow float32
round-off (rtol 1e-5, atol 1e-6) and see 0 in practice. A constant learning rate
(``scheduler=none``) makes the killed run's open-ended ``max_epochs`` irrelevant to its updates.
(Mid-epoch checkpoints, ``every_n_train_steps``, restart that epoch's data order: Lightning
cannot fast-forward a plain DataLoader, so they resume approximately.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_NET
from xvector.checkpoints import AtomicCheckpointIO
from xvector.train import train

TOL = {"rtol": 1e-5, "atol": 1e-6}


def _args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [f"paths.data_dir={corpus}", f"paths.output_dir={out}", *TINY_NET, "scheduler=none",
            "trainer.limit_train_batches=3", "trainer.enable_progress_bar=false", *extra]


def _weights(run: Path) -> tuple[int, dict[str, torch.Tensor]]:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    return ckpt["global_step"], ckpt["state_dict"]


def _assert_same_run(a: Path, b: Path) -> None:
    (step_a, wa), (step_b, wb) = _weights(a), _weights(b)
    assert step_a == step_b
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], **TOL)


def test_resume_from_last_ckpt_matches_uninterrupted_run(tiny_corpus, tmp_path, compose_config):
    train(compose_config("train", _args(tiny_corpus, tmp_path / "whole", "trainer.max_epochs=2")))
    part = tmp_path / "part"
    train(compose_config("train", _args(tiny_corpus, part, "trainer.max_epochs=1")))
    assert _weights(part)[0] == 3
    train(compose_config("train", _args(tiny_corpus, part, "trainer.max_epochs=2", f"ckpt_path={part}/checkpoints/last.ckpt")))
    _assert_same_run(tmp_path / "whole", part)


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches_uninterrupted_run(tiny_corpus, tmp_path, compose_config):
    killed = tmp_path / "killed"
    last = killed / "checkpoints" / "last.ckpt"
    log = tmp_path / "killed.log"
    with log.open("w") as stderr:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(
            [sys.executable, "-m", "xvector.train", *_args(tiny_corpus, killed, "trainer.max_epochs=1000")],
            cwd=Path(__file__).resolve().parents[1], stdout=stderr, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while not last.exists():
            assert proc.poll() is None, f"training exited early: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no last.ckpt within 180 s"
            time.sleep(0.05)
        time.sleep(0.5)  # kill it somewhere in the next epoch (or while it saves)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # last.ckpt is whole: a save cut short leaves only a hidden temporary file beside it
    step, _ = _weights(killed)
    epochs_done = step // 3
    assert step % 3 == 0 and epochs_done >= 1
    target = epochs_done + 2
    train(compose_config("train", _args(tiny_corpus, killed, f"trainer.max_epochs={target}", f"ckpt_path={last}")))
    train(compose_config("train", _args(tiny_corpus, tmp_path / "whole", f"trainer.max_epochs={target}")))
    _assert_same_run(tmp_path / "whole", killed)


def test_atomic_checkpoint_io_never_leaves_a_partial_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1

    def crash(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["global_step"] == 1  # the old file, intact
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary left behind
    with pytest.raises(TypeError, match="storage_options"):
        io.save_checkpoint({}, path, storage_options={"x": 1})


def test_every_n_train_steps_saves_last_ckpt_mid_epoch(tiny_corpus, tmp_path, compose_config):
    import lightning as L

    from xvector.train import build

    class Peek(L.Callback):
        def __init__(self) -> None:
            self.steps: list[int] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            last = tmp_path / "checkpoints" / "last.ckpt"
            self.steps.append(torch.load(last, weights_only=False)["global_step"] if last.exists() else -1)

    cfg = compose_config("train", _args(tiny_corpus, tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=5",
                                        "callbacks.last_checkpoint.every_n_train_steps=2", "trainer.limit_val_batches=0"))
    system, datamodule, trainer = build(cfg)
    peek = Peek()
    trainer.callbacks.append(peek)
    trainer.fit(system, datamodule=datamodule)
    assert peek.steps == [-1, -1, 2, 2, 4]  # saved after steps 2 and 4, inside the epoch
