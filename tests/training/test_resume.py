"""Resuming: a killed run continues from ``last.ckpt`` to the weights of an uninterrupted run.

Checkpoints carry the RNG states (crops, dither, shuffling, masks) and the training loader's
place in its epoch (:class:`~xvector.training.resumable.ResumableLoader`), so resuming from an
end-of-epoch or a mid-epoch (``every_n_train_steps``) ``last.ckpt`` repeats the uninterrupted
run exactly; the tests allow float32 round-off (rtol 1e-5, atol 1e-6) and see 0 in practice. A
constant learning rate (``scheduler=none``) makes the killed run's open-ended ``max_epochs``
irrelevant to its updates. A killed save's hidden temporary is removed when training restarts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.conftest import TINY_NET
from xvector.atomic import remove_stale_temporaries
from xvector.cli.train import build, train
from xvector.training.checkpoints import AtomicCheckpointIO, RemoveStaleTemporaries

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


def test_resume_from_last_ckpt_matches_uninterrupted_run(tiny_corpus, tmp_path, compose_config, caplog):
    train(compose_config("train", _args(tiny_corpus, tmp_path / "whole", "trainer.max_epochs=2")))
    part = tmp_path / "part"
    train(compose_config("train", _args(tiny_corpus, part, "trainer.max_epochs=1")))
    assert _weights(part)[0] == 3
    # what a SIGKILL during a save leaves beside the intact checkpoints (atomic_output's names)
    folder = part / "checkpoints"
    stale = [folder / ".last.ckpt.k1ll3d.tmp", folder / ".epoch000-eer0.2500.ckpt.x8y9z0.tmp"]
    for path in stale:
        path.write_bytes(b"PK\x03\x04 half a checkpoint")
    kept = [folder / ".notes.tmp", folder / "mine.ckpt.tmp"]  # not temporaries of a checkpoint
    for path in kept:
        path.write_text("keep")
    with caplog.at_level("WARNING", logger="xvector.training.checkpoints"):
        train(compose_config("train", _args(tiny_corpus, part, "trainer.max_epochs=2",
                                            f"ckpt_path={folder}/last.ckpt")))
    _assert_same_run(tmp_path / "whole", part)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert f"removed 2 stale temporary checkpoint file(s) left by a killed save in {folder}" in caplog.text


def test_remove_stale_temporaries_matches_only_atomic_output_names(tmp_path):
    from xvector.atomic import atomic_output

    with pytest.raises(RuntimeError), atomic_output(tmp_path / "last.ckpt") as tmp:
        live = tmp  # the name a save in progress has
        raise RuntimeError
    assert not live.exists()  # an exception cleans up; only a kill leaves one behind
    for name in (live.name, ".last.ckpt.abc.tmp", ".step0000004.ckpt.q.tmp", ".a.npz.zz.tmp", "last.ckpt", ".x.tmp"):
        (tmp_path / name).write_text("x")
    removed = remove_stale_temporaries(tmp_path, "*.ckpt")
    assert sorted(p.name for p in removed) == sorted([live.name, ".last.ckpt.abc.tmp", ".step0000004.ckpt.q.tmp"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.npz.zz.tmp", ".x.tmp", "last.ckpt"]
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_build_cleans_the_checkpoint_folders_on_rank_zero_only(tiny_corpus, tmp_path, compose_config):
    _, _, trainer = build(compose_config("train", _args(tiny_corpus, tmp_path)))
    [cleaner] = [c for c in trainer.callbacks if isinstance(c, RemoveStaleTemporaries)]
    (tmp_path / "checkpoints").mkdir()
    stale = tmp_path / "checkpoints" / ".last.ckpt.k1ll3d.tmp"
    stale.write_text("x")

    class Rank:
        def __init__(self, zero: bool) -> None:
            self.is_global_zero, self.checkpoint_callbacks = zero, trainer.checkpoint_callbacks

    cleaner.on_fit_start(Rank(zero=False), None)
    assert stale.exists()
    cleaner.on_fit_start(Rank(zero=True), None)
    assert not stale.exists() and cleaner.removed == [stale]


class _Killed(Exception):
    pass


class _Crash(L.Callback):
    """Stop the run (as a kill would) when global step ``at`` is about to begin."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.at:
            raise _Killed(f"killed before step {self.at + 1}")


@pytest.mark.parametrize("data", [["data.seed=null"], ["data.seed=7", "data.num_workers=1"]],
                         ids=["torch-rng-crops", "seeded-crops-1-worker"])
def test_resume_from_mid_epoch_checkpoint_matches_uninterrupted_run(tiny_corpus, tmp_path, compose_config, data):
    # 3 batches an epoch, last.ckpt every 2 steps: step 4 is the first batch of epoch 1
    common = ["trainer.max_epochs=2", "callbacks.last_checkpoint.every_n_train_steps=2", *data]
    train(compose_config("train", _args(tiny_corpus, tmp_path / "whole", *common)))
    killed = tmp_path / "killed"
    system, datamodule, trainer = build(compose_config("train", _args(tiny_corpus, killed, *common)))
    trainer.callbacks.append(_Crash(at=4))
    with pytest.raises(_Killed):
        trainer.fit(system, datamodule=datamodule)
    last = killed / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["global_step"] == 4 and ckpt["epoch"] == 1
    [position] = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert (position["epoch"], position["batches"]) == (1, 1)  # one batch of epoch 1 taken
    train(compose_config("train", _args(tiny_corpus, killed, *common, f"ckpt_path={last}")))
    _assert_same_run(tmp_path / "whole", killed)


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches_uninterrupted_run(tiny_corpus, tmp_path, compose_config):
    # last.ckpt every 2 steps of 3-step epochs: the kill finds one from inside an epoch (steps
    # 2, 4, 8, ...) or from its end (6, 12, ...)
    every = "callbacks.last_checkpoint.every_n_train_steps=2"
    killed = tmp_path / "killed"
    last = killed / "checkpoints" / "last.ckpt"
    log = tmp_path / "killed.log"
    with log.open("w") as stderr:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(
            [sys.executable, "-m", "xvector.cli.train", *_args(tiny_corpus, killed, "trainer.max_epochs=1000", every)],
            cwd=Path(__file__).resolve().parents[2], stdout=stderr, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while not last.exists():
            assert proc.poll() is None, f"training exited early: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no last.ckpt within 180 s"
            time.sleep(0.05)
        time.sleep(0.5)  # kill it a few steps later (or while it saves)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # last.ckpt is whole: a save cut short leaves only a hidden temporary file beside it
    step, _ = _weights(killed)
    assert step >= 2 and step % 2 == 0
    target = step // 3 + 2
    # Resumed and whole runs through the CLI in fresh processes, as a user runs them: in this
    # process, state left by earlier tests made a step-18 resume differ (seen twice in the full
    # suite, never alone; not yet explained).
    for out, extra in ((killed, [f"ckpt_path={last}"]), (tmp_path / "whole", [])):
        subprocess.run([sys.executable, "-m", "xvector.cli.train",
                        *_args(tiny_corpus, out, f"trainer.max_epochs={target}", every, *extra)],
                       cwd=Path(__file__).resolve().parents[2], check=True, capture_output=True, timeout=300)
    assert not list(last.parent.glob(".*.tmp"))  # the resumed run removed any such temporary
    try:
        _assert_same_run(tmp_path / "whole", killed)
    except AssertionError as err:  # which kill point differs (it varies with the machine's load)
        raise AssertionError(f"killed with last.ckpt at step {step}, resumed to epoch {target}: {err}") from err


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

    from xvector.cli.train import build

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
