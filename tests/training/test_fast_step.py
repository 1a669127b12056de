"""The training step that does not wait: on-device augmentation through ``xvector-train``, no host
sync in the step, the deferred non-finite-loss checks, and the CUDA settings (inert on a CPU)."""

from __future__ import annotations

from unittest import mock

import lightning as L
import pytest
import torch
from torch.overrides import TorchFunctionMode

from tests.conftest import TINY_NET
from xvector.cli.train import build
from xvector.training.backends import CudaSettings, apply_cuda_settings
from xvector.training.nan_guard import NanGuard
from xvector.training.progress import EpochSummary
from xvector.training.system import SpeakerSystem

DEVICE_AUG = ["augment@data=synthetic", "data.augment_on=device"]
SYNCS = {"item", "__bool__", "__float__", "__int__", "__index__", "tolist", "cpu", "numpy", "__format__"}


def _args(corpus, out, *extra):
    return [f"paths.data_dir={corpus}", f"paths.output_dir={out}", *TINY_NET, "trainer.enable_progress_bar=false",
            "trainer.max_epochs=1", "trainer.limit_val_batches=0", "~callbacks", "~logger", *extra]


class _Losses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def _fit(cfg, *callbacks):
    system, datamodule, trainer = build(cfg)
    trainer.callbacks.extend(callbacks)
    trainer.fit(system, datamodule=datamodule)
    return system, trainer


def test_device_augmentation_trains_as_the_workers_do(tiny_corpus, tmp_path, compose_config):
    """Same seed, same draws: the step sees the CPU path's crops (to float rounding), so the losses agree
    for two steps. SGD, not Adam: Adam's normalisation turns float-rounding differences of tiny
    gradients into whole-step differences of the weights (0.14 % of the second loss on an AVX2 CPU)."""
    runs = {}
    for where in ("workers", "device"):
        seen = _Losses()
        cfg = compose_config("train", _args(tiny_corpus, tmp_path / where, "augment@data=synthetic",
                                            f"data.augment_on={where}", "trainer.limit_train_batches=2",
                                            "optimizer=sgd"))
        system, _ = _fit(cfg, seen)
        runs[where] = seen.losses
        assert (system.batch_augment is not None) == (where == "device")
    assert len(runs["device"]) == 2
    torch.testing.assert_close(torch.tensor(runs["device"]), torch.tensor(runs["workers"]), rtol=1e-4, atol=1e-5)
    assert not any(k.startswith("_batch_augment") for k in system.state_dict())  # banks stay out of checkpoints


class _Spy(TorchFunctionMode):
    """Records every tensor-to-host conversion made while active (each one is a GPU sync)."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in SYNCS:
            import traceback
            frame = traceback.extract_stack()[-2]
            self.calls.append(f"{func.__name__} at {frame.filename}:{frame.lineno}")
        return func(*args, **(kwargs or {}))


def _spied(fn, calls, when=lambda self: True):
    def wrapper(self, *args, **kwargs):
        if not when(self):
            return fn(self, *args, **kwargs)
        with _Spy(calls):
            return fn(self, *args, **kwargs)
    return wrapper


@pytest.mark.parametrize("policy", [["nan_policy=error"], ["nan_policy=skip", "+optimizer.fused=true"]])
def test_the_step_makes_no_host_sync(tiny_corpus, tmp_path, compose_config, monkeypatch, policy):
    calls: list[str] = []
    after_first = lambda system: system.global_step > 0  # noqa: E731  (skip decides on the host on step 0)
    for cls, name in ((SpeakerSystem, "training_step"), (SpeakerSystem, "on_before_optimizer_step"),
                      (SpeakerSystem, "on_train_batch_end")):
        monkeypatch.setattr(cls, name, _spied(getattr(cls, name), calls, after_first))
    for name in ("on_train_batch_start", "on_train_batch_end"):
        monkeypatch.setattr(EpochSummary, name, _spied(getattr(EpochSummary, name), calls))
    cfg = compose_config("train", _args(tiny_corpus, tmp_path, *DEVICE_AUG, *policy, "trainer.limit_train_batches=4"))
    system, datamodule, trainer = build(cfg)
    trainer.callbacks.append(EpochSummary())
    trainer.fit(system, datamodule=datamodule)
    assert trainer.global_step == 4 and system.nan_guard.pending == []  # looked at, at the epoch's end
    assert calls == []


class _PoisonAt(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            batch["wav"][0, 100] = float("nan")


def test_deferred_error_never_writes_a_checkpoint_past_a_nan(tiny_corpus, tmp_path, compose_config):
    out = tmp_path / "run"
    cfg = compose_config("train", [
        f"paths.data_dir={tiny_corpus}", f"paths.output_dir={out}", *TINY_NET, "trainer.enable_progress_bar=false",
        "trainer.max_epochs=1", "trainer.limit_val_batches=0", "trainer.limit_train_batches=4", "~logger",
        "~callbacks.model_checkpoint", "~callbacks.periodic_checkpoint", "~callbacks.lr_monitor",
        "callbacks.last_checkpoint.every_n_train_steps=2"])
    with pytest.raises(FloatingPointError, match=r"non-finite training loss \(nan\) at global step 1 \(epoch 0, batch 1\)"):
        _fit(cfg, _PoisonAt(1))
    assert not list((out / "checkpoints").glob("*.ckpt"))  # the step-2 save looked first, and stopped


def test_nan_check_interval_and_skip_on_device(tiny_corpus, tmp_path, compose_config, caplog):
    cfg = compose_config("train", _args(tiny_corpus, tmp_path, "nan_policy=skip", "+optimizer.fused=true",
                                        "nan_check_every_n_steps=2", "trainer.limit_train_batches=4"))
    with caplog.at_level("WARNING", logger="xvector.training.system"):
        system, trainer = _fit(cfg, _PoisonAt(2))
    assert system.skipped_batches == 1 and all(torch.isfinite(p).all() for p in system.parameters())
    assert {int(s["step"]) for s in trainer.optimizers[0].state.values()} == {3}  # the fused step dropped one
    assert any(r.getMessage().startswith("skipped batch: non-finite training loss (nan) at global step 2")
               for r in caplog.records)
    guard = NanGuard("error", every_n_steps=3)
    for step in range(2):
        guard.record(torch.tensor(1.0), step, 0, step, ["a"])
    assert not guard.due and guard.resolve() == 0 and guard.pending == []
    with pytest.raises(ValueError, match="nan_check_every_n_steps must be >= 1"):
        NanGuard("error", 0)


def test_cuda_settings_leave_a_cpu_run_alone_and_restore_a_gpu_one():
    before = (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    cpu = mock.Mock()
    cpu.strategy.root_device = torch.device("cpu")
    settings = CudaSettings(cudnn_benchmark=True, matmul_precision="high")
    settings.setup(cpu, None, "fit")
    settings.on_train_epoch_start(cpu, None)
    assert (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()) == before[:2]
    gpu = mock.Mock()
    gpu.strategy.root_device = torch.device("cuda", 0)
    gpu.state.fn = "fit"
    try:
        settings.setup(gpu, None, "fit")
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "high"
        settings.on_validation_epoch_start(gpu, None)
        assert not torch.backends.cudnn.benchmark  # whole utterances: every length a new shape
        settings.on_validation_epoch_end(gpu, None)
        assert torch.backends.cudnn.benchmark
        settings.teardown(gpu, None, "fit")
        assert (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision(),
                torch.backends.cudnn.allow_tf32) == before
        apply_cuda_settings(False, "highest")
        assert not torch.backends.cudnn.allow_tf32
    finally:
        apply_cuda_settings(before[0], before[1])
        torch.backends.cudnn.allow_tf32 = before[2]
    with pytest.raises(ValueError, match="matmul_precision='fast'"):
        CudaSettings(matmul_precision="fast")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("policy", [["nan_policy=error"], ["nan_policy=skip", "+optimizer.fused=true"]])
def test_the_cuda_step_never_synchronises(tiny_corpus, tmp_path, compose_config, monkeypatch, policy):
    """On a GPU, torch's sync debug mode raises at any device-to-host wait inside the step."""
    def strict(fn):
        def wrapper(self, *args, **kwargs):
            if self.global_step == 0:
                return fn(self, *args, **kwargs)
            torch.cuda.set_sync_debug_mode("error")
            try:
                return fn(self, *args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return wrapper

    for name in ("training_step", "on_before_optimizer_step"):
        monkeypatch.setattr(SpeakerSystem, name, strict(getattr(SpeakerSystem, name)))
    cfg = compose_config("train", _args(tiny_corpus, tmp_path, *DEVICE_AUG, *policy, "trainer.accelerator=gpu",
                                        "trainer.limit_train_batches=4"))
    system, trainer = _fit(cfg)
    assert trainer.global_step == 4 and system.skipped_batches == 0
