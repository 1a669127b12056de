"""Training through the Hydra config and Lightning, on a tiny generated corpus.

Lightning features that are configured rather than coded (precision, clipping, seeding,
compile, SpecAugment, loggers), the NaN policy, fine-tuning from another run's weights, and
checkpoint averaging. Every experiment file is exercised in ``tests/test_experiments.py``.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.conftest import TINY_NET
from xvector.cli.train import build, train
from xvector.features.specaugment import SpecAugment
from xvector.inference.embedder import load_embedder
from xvector.training.checkpoints import average_checkpoints, last_checkpoints

REPO = Path(__file__).resolve().parents[2]


def _overrides(corpus, out, *extra):
    return [f"paths.data_dir={corpus}", f"paths.output_dir={out}", *TINY_NET, "trainer.enable_progress_bar=false", *extra]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fit(cfg, *callbacks: L.Callback):
    system, datamodule, trainer = build(cfg)
    trainer.callbacks.extend(callbacks)
    trainer.fit(system, datamodule=datamodule)
    return system, trainer


@pytest.fixture(scope="module")
def trained_run(tiny_corpus, tmp_path_factory):
    """One tiny run of 3 epochs x 2 steps keeping its last 3 periodic checkpoints (and metrics.csv)."""
    from hydra import compose, initialize_config_dir

    from xvector import CONFIG_DIR

    out = tmp_path_factory.mktemp("run")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", _overrides(tiny_corpus, out, "trainer.max_epochs=3", "trainer.limit_train_batches=2",
                                          "trainer.log_every_n_steps=1", "callbacks.periodic_checkpoint.save_top_k=3"))
    train(cfg)
    return out


def test_experiment_and_features_compose(compose_config, tmp_path):
    cfg = compose_config("train", ["experiment=synthetic_xvector_softmax", "features=mfcc", f"paths.output_dir={tmp_path}"])
    assert cfg.features._target_.endswith("MFCC") and cfg.features.num_ceps == 30
    assert cfg.model.channels == [512, 512, 512, 512, 1500]
    assert cfg.val_trials == "data/synthetic/dev/trials"
    aam = compose_config("train", ["experiment=synthetic_xvector_aam", f"paths.output_dir={tmp_path}"])
    assert aam.head._target_.endswith("AAMSoftmax") and aam.model.segment_dims == []


def test_checkpoint_rebuilds_embedder_and_resumes(tiny_corpus, tmp_path, compose_config):
    args = _overrides(tiny_corpus, tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=2")
    train(compose_config("train", args))
    ckpts = sorted((tmp_path / "checkpoints").glob("*.ckpt"))
    assert {p.name for p in ckpts} >= {"last.ckpt"} and len(ckpts) == 2  # best val/eer + last
    embedder, cfg = load_embedder(tmp_path / "checkpoints" / "last.ckpt")
    assert cfg.model.embed_dim == 16
    emb = embedder(torch.randn(2, 8000), torch.tensor([8000, 6000]))
    assert emb.shape == (2, 16) and torch.isfinite(emb).all()
    assert (tmp_path / "csv" / "metrics.csv").read_text().count("val/eer") >= 1
    # resume for one more epoch from last.ckpt
    metrics = train(compose_config("train", [*args, "trainer.max_epochs=2", f"ckpt_path={tmp_path}/checkpoints/last.ckpt"]))
    assert 0.0 <= metrics["val/eer"] <= 1.0
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4  # 2 + 2


def test_load_embedder_rejects_foreign_checkpoint(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="not an xvector training checkpoint"):
        load_embedder(tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="does not exist"):
        load_embedder(tmp_path / "missing.ckpt")


# --- Lightning features, from config -------------------------------------------------------


class _GradNorms(L.Callback):
    """Total gradient norm after each optimizer step (Lightning clips before stepping)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))


def test_gradient_clipping_bounds_the_gradient_norm(tiny_corpus, tmp_path, compose_config):
    args = _overrides(tiny_corpus, tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                      "trainer.limit_val_batches=0", "~logger", "~callbacks")
    free, clipped = _GradNorms(), _GradNorms()
    _fit(compose_config("train", args), free)
    _fit(compose_config("train", [*args, "trainer.gradient_clip_val=0.01"]), clipped)
    assert min(free.norms) > 0.05  # unclipped gradients are far above the limit ...
    assert len(clipped.norms) == 3 and max(clipped.norms) <= 0.01 * (1 + 1e-4)  # ... clipped ones are not


class _ConvDtypes(L.Callback):
    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def on_fit_start(self, trainer, pl_module) -> None:
        conv = next(m for m in pl_module.embedder.net.modules() if isinstance(m, torch.nn.Conv1d))
        conv.register_forward_hook(lambda m, i, o: self.dtypes.add(o.dtype))


def test_bf16_mixed_precision_on_cpu(tiny_corpus, tmp_path, compose_config):
    seen = _ConvDtypes()
    system, trainer = _fit(compose_config("train", _overrides(tiny_corpus, tmp_path, "trainer.fast_dev_run=true",
                                                              "trainer.precision=bf16-mixed")), seen)
    assert seen.dtypes == {torch.bfloat16}  # the TDNN ran under autocast
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    assert all(p.dtype == torch.float32 for p in system.parameters())  # master weights stay float32


def test_same_seed_same_weights_other_seed_other_weights(tiny_corpus, tmp_path, compose_config):
    args = _overrides(tiny_corpus, tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                      "trainer.limit_val_batches=0", "trainer.deterministic=true", "~logger", "~callbacks")
    a, _ = _fit(compose_config("train", args))
    b, _ = _fit(compose_config("train", args))
    c, _ = _fit(compose_config("train", [*args, "seed=7"]))
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, rtol=0, atol=0)
    assert not torch.equal(c.state_dict()["embedder.net.embedding.weight"], a.state_dict()["embedder.net.embedding.weight"])


def test_compile_option_compiles_the_net_in_place(tiny_corpus, tmp_path, compose_config):
    cfg = compose_config("train", _overrides(tiny_corpus, tmp_path, "trainer.fast_dev_run=true", "compile=true",
                                             "compile_backend=eager"))
    system, trainer = _fit(cfg)
    assert system.embedder.net._compiled_call_impl is not None
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    assert not any("_orig_mod" in k for k in system.state_dict())  # checkpoint keys unchanged


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("cc"), reason="inductor needs a C++ compiler")
def test_compile_with_inductor_matches_eager(tiny_corpus, tmp_path, compose_config):
    args = _overrides(tiny_corpus, tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                      "trainer.limit_val_batches=0", "~logger", "~callbacks")
    compiled, trainer = _fit(compose_config("train", [*args, "compile=true"]))
    assert compiled.embedder.net._compiled_call_impl is not None
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    eager, _, _ = build(compose_config("train", args))
    eager.load_state_dict(compiled.state_dict())  # same keys: compiled in place
    wav, lens = torch.randn(3, 12000), torch.tensor([12000, 9000, 7000])
    with torch.no_grad():
        torch.testing.assert_close(compiled.eval()(wav, lens), eager.eval()(wav, lens), rtol=1e-4, atol=1e-5)


class _NetInputs(L.Callback):
    def __init__(self) -> None:
        self.inputs: dict[bool, list[torch.Tensor]] = {True: [], False: []}

    def on_fit_start(self, trainer, pl_module) -> None:
        net = pl_module.embedder.net
        net.register_forward_pre_hook(lambda m, args: self.inputs[m.training].append(args[0].detach().clone()))


def test_spec_augment_masks_training_features_only(tiny_corpus, tmp_path, compose_config):
    seen = _NetInputs()
    cfg = compose_config("train", _overrides(tiny_corpus, tmp_path, "trainer.fast_dev_run=true",
                                             "spec_augment.freq_masks=3", "spec_augment.max_freq_width=24"))
    system, _ = _fit(cfg, seen)
    assert isinstance(system.spec_augment, SpecAugment) and not list(system.spec_augment.state_dict())

    def masked_bins(feats):  # (B, F, T) -> bins that are zero over all time, per utterance
        return int((feats == 0).all(-1).sum())

    assert masked_bins(seen.inputs[True][0]) > 0
    assert seen.inputs[False] and all(masked_bins(x) == 0 for x in seen.inputs[False])


def test_tensorboard_logger_writes_events(tiny_corpus, tmp_path, compose_config):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(compose_config("train", _overrides(tiny_corpus, tmp_path, "logger=[csv,tensorboard]", "trainer.max_epochs=1",
                                             "trainer.limit_train_batches=2", "trainer.log_every_n_steps=1")))
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and (tmp_path / "csv" / "metrics.csv").is_file()
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    assert {"train/loss", "train/acc", "val/eer", "perf/data_wait_frac", "perf/crops_per_s"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("train/loss")) == 2
    assert 0 <= acc.Scalars("perf/data_wait_frac")[0].value <= 1 and acc.Scalars("perf/crops_per_s")[0].value > 0
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    waits = [float(r["perf/data_wait_frac"]) for r in rows if r.get("perf/data_wait_frac")]
    assert len(waits) == 1 and 0 <= waits[0] <= 1  # one per epoch, in the CSV log too


# --- non-finite losses ---------------------------------------------------------------------


class _PoisonBatch(L.Callback):
    """Put a NaN into the waveform of the batch at global step ``at``; remember its utterances."""

    def __init__(self, at: int) -> None:
        self.at, self.utts = at, None
        self.before: dict[str, torch.Tensor] = {}
        self.after: dict[str, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.at and self.utts is None:
            batch["wav"][0, 100] = float("nan")
            self.utts = list(batch["utts"])
            self.before = {k: v.clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.before and not self.after:
            self.after = {k: v.clone() for k, v in pl_module.state_dict().items()}


def test_nan_loss_error_names_step_and_utterances(tiny_corpus, tmp_path, compose_config):
    poison = _PoisonBatch(at=1)
    cfg = compose_config("train", _overrides(tiny_corpus, tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                                             "trainer.limit_val_batches=0", "~callbacks"))
    with pytest.raises(FloatingPointError, match=r"non-finite training loss \(nan\) at global step 1 ") as err:
        _fit(cfg, poison)
    assert all(utt in str(err.value) for utt in poison.utts) and "nan_policy=skip" in str(err.value)


def test_nan_loss_skip_drops_the_batch_and_counts_it(tiny_corpus, tmp_path, compose_config):
    poison = _PoisonBatch(at=1)
    cfg = compose_config("train", _overrides(tiny_corpus, tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                                             "trainer.limit_val_batches=0", "trainer.log_every_n_steps=1",
                                             "~callbacks", "nan_policy=skip"))
    system, trainer = _fit(cfg, poison)
    assert system.skipped_batches == 1 and poison.utts
    assert all(torch.isfinite(p).all() for p in system.parameters())
    assert float(trainer.callback_metrics["train/skipped_batches"]) == 1.0
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    assert [r["train/skipped_batches"] for r in rows if r.get("train/skipped_batches")] == ["1.0"]
    # the poisoned batch changed no weight (no update, no weight decay, no optimizer step count); the others did
    assert {int(state["step"]) for state in trainer.optimizers[0].state.values()} == {2}
    for key, value in poison.before.items():
        torch.testing.assert_close(poison.after[key], value, rtol=0, atol=0)
    assert not torch.equal(system.state_dict()["embedder.net.embedding.weight"], poison.before["embedder.net.embedding.weight"])


def test_unknown_nan_policy_is_refused(tiny_corpus, tmp_path, compose_config):
    with pytest.raises(ValueError, match="nan_policy='ignore'"):
        build(compose_config("train", _overrides(tiny_corpus, tmp_path, "nan_policy=ignore")))


# --- fine-tuning from another run's weights ------------------------------------------------


def test_init_from_copies_weights_and_restarts_training(trained_run, tiny_corpus, tmp_path, compose_config):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    system, _, _ = build(compose_config("train", _overrides(tiny_corpus, tmp_path, f"init_from={ckpt}")))
    source = torch.load(ckpt, weights_only=False)["state_dict"]
    for key, value in system.state_dict().items():
        torch.testing.assert_close(value, source[key], rtol=0, atol=0)
    # not a resume: a fine-tuning run counts its own steps from 0
    cfg = compose_config("train", _overrides(tiny_corpus, tmp_path / "ft", f"init_from={ckpt}", "trainer.max_epochs=1",
                                             "trainer.limit_train_batches=1", "optimizer.lr=0.0001"))
    train(cfg)
    assert torch.load(tmp_path / "ft" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 1


def test_init_from_other_architecture_names_checkpoint_and_parameter(trained_run, tiny_corpus, tmp_path, compose_config):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    wider = [a for a in _overrides(tiny_corpus, tmp_path, f"init_from={ckpt}") if not a.startswith("model.channels")]
    with pytest.raises(ValueError, match=r"last\.ckpt: parameter 'embedder\.net\.frame_layers\.0\.[\w.]+' has shape \(32, 24, 5\) in the checkpoint but \(48, 24, 5\)"):
        build(compose_config("train", [*wider, "model.channels=[48,32,32,32,64]"]))
    with pytest.raises(ValueError, match=r"last\.ckpt: .*parameter 'embedder\.net\.segment"):
        build(compose_config("train", [*_overrides(tiny_corpus, tmp_path, f"init_from={ckpt}"), "model.segment_dims=[]"]))
    with pytest.raises(ValueError, match="does not exist"):
        build(compose_config("train", _overrides(tiny_corpus, tmp_path, f"init_from={tmp_path}/none.ckpt")))


def test_init_from_new_speaker_set_needs_reset_head(trained_run, tiny_corpus, noise_dir, tmp_path, compose_config):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    data = tmp_path / "data"
    noise_dir(data / "train", {f"s{i}": 4 for i in range(4)})  # 4 speakers, not 6
    args = [f"paths.data_dir={data}", f"paths.output_dir={tmp_path}", *TINY_NET, "data.val_dir=null", f"init_from={ckpt}"]
    with pytest.raises(ValueError, match=r"last\.ckpt: parameter 'head\.[\w.]*weight' has shape \(6, 16\) in the checkpoint but \(4, 16\).*init_reset_head=true"):
        build(compose_config("train", args))
    system, _, _ = build(compose_config("train", [*args, "init_reset_head=true"]))
    source = torch.load(ckpt, weights_only=False)["state_dict"]
    assert {v.shape[0] for k, v in system.state_dict().items() if k.startswith("head.")} == {4}
    for key, value in system.state_dict().items():
        if key.startswith("embedder."):
            torch.testing.assert_close(value, source[key], rtol=0, atol=0)


# --- checkpoint averaging and plots --------------------------------------------------------


def test_average_checkpoints_is_the_elementwise_mean_and_loads(trained_run, tmp_path):
    paths = last_checkpoints(trained_run / "checkpoints", 2)
    steps = [torch.load(p, weights_only=False)["global_step"] for p in paths]
    assert steps == [4, 6]  # the last two of steps 2, 4, 6 (last.ckpt repeats step 6)
    out = tmp_path / "avg.ckpt"
    averaged = average_checkpoints(paths, out)
    a, b = (torch.load(p, weights_only=False)["state_dict"] for p in paths)
    written = torch.load(out, weights_only=False)
    assert written["averaged_from"] == [str(p) for p in paths]
    for key, value in written["state_dict"].items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (a[key] + b[key]) / 2, rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(value, b[key])
    assert averaged["state_dict"].keys() == written["state_dict"].keys() == a.keys()
    embedder, cfg = load_embedder(out)
    assert embedder(torch.randn(1, 8000)).shape == (1, cfg.model.embed_dim)
    # the script: --last k over a folder, or explicit paths
    script = _script("average_checkpoints")
    script.main(["--dir", str(trained_run / "checkpoints"), "--last", "2", "--out", str(tmp_path / "cli.ckpt")])
    torch.testing.assert_close(torch.load(tmp_path / "cli.ckpt", weights_only=False)["state_dict"], written["state_dict"])
    with pytest.raises(ValueError, match="cannot take the last 9"):
        last_checkpoints(trained_run / "checkpoints", 9)


def test_average_checkpoints_refuses_other_shapes(trained_run, tmp_path):
    path = trained_run / "checkpoints" / "last.ckpt"
    other = torch.load(path, weights_only=False)
    key = next(k for k in other["state_dict"] if k.startswith("head."))
    other["state_dict"][key] = torch.zeros(3, 16)
    torch.save(other, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match=rf"other\.ckpt: parameter '{key}' has shape \(3, 16\)"):
        average_checkpoints([path, tmp_path / "other.ckpt"], tmp_path / "avg.ckpt")
    assert not (tmp_path / "avg.ckpt").exists()


def test_plot_metrics_writes_a_png(trained_run, tmp_path):
    script = _script("plot_metrics")
    out = tmp_path / "metrics.png"
    script.main([str(trained_run / "csv" / "metrics.csv"), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    series = script.read_metrics(trained_run / "csv" / "metrics.csv")
    assert [s for s, _ in series["train/loss"]] == [0, 1, 2, 3, 4, 5]  # one value per step
    assert len(series["val/eer"]) == 3
    with pytest.raises(ValueError, match="no train/loss"):
        (tmp_path / "empty.csv").write_text("epoch,step\n0,0\n")
        script.main([str(tmp_path / "empty.csv"), "--out", str(tmp_path / "x.png")])


def test_epoch_summary_line_and_progress_bar_follows_the_terminal(tiny_corpus, tmp_path, compose_config, caplog,
                                                                   monkeypatch):
    import re
    import sys

    from xvector.training.progress import progress_bar_enabled

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress_bar_enabled(None) is False and progress_bar_enabled(True) is True
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress_bar_enabled(None) is True and progress_bar_enabled(False) is False

    args = [f"paths.data_dir={tiny_corpus}", f"paths.output_dir={tmp_path}", *TINY_NET,
            "trainer.max_epochs=2", "trainer.limit_train_batches=2", "data.batch_size=4"]
    cfg = compose_config("train", args)
    assert cfg.trainer.enable_progress_bar is None  # the default: follow the terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    with caplog.at_level("INFO", logger="xvector.cli.train"):
        system, trainer = _fit(cfg)
    assert not trainer.progress_bar_callback  # not a terminal: no bar
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 2, lines
    pattern = (r"epoch 2/2 in \d+\.\d s \((\d+) crops/s, data wait \d+%\): train/loss [\d.]+, "
               r"train/acc [\d.e-]+ \(epoch means\), val/eer [\d.e-]+, val/min_dcf [\d.e-]+, lr [\d.e-]+")
    assert re.fullmatch(pattern, lines[1]), lines[1]


def test_train_acc_is_the_accuracy_without_the_margin():
    """With a margin head, train/acc counts argmax hits of the plain cosines (Kaldi's accuracy),
    not of the margin-penalised logits, which under-count (here: 4 of 4 against 0 of 4)."""
    from functools import partial
    from unittest import mock

    from xvector.features.fbank import Fbank
    from xvector.losses.margin import AAMSoftmax
    from xvector.nets.tdnn import XVector
    from xvector.training.system import SpeakerSystem

    torch.manual_seed(0)
    system = SpeakerSystem(
        features=Fbank(num_mel_bins=20), net=partial(XVector, channels=(16, 16, 16, 16, 32), embed_dim=8,
                                                     segment_dims=()),
        head=partial(AAMSoftmax, scale=30.0, margin=1.4), optimizer=partial(torch.optim.SGD, lr=0.1), num_classes=4,
    )
    system.eval()  # fixed BatchNorm statistics: the embeddings below are the ones the step sees
    wav = torch.randn(4, 8000)
    lens = torch.full((4,), 8000)
    with torch.no_grad():
        emb = system.embedder.net.classifier_input(system._embed(wav, lens, augment=True))
        labels = system.head(emb).argmax(-1)  # the plain cosines' choices: plain accuracy 1 by construction
        margin_hits = int((system.head(emb, labels).argmax(-1) == labels).sum())
    assert margin_hits == 0  # cos(θ + 1.4) puts every target below the others
    logged = {}
    system.log = lambda name, value, **kw: logged.__setitem__(name, float(value.detach()))
    trainer = mock.Mock(global_step=0, current_epoch=0)
    trainer.strategy.reduce_boolean_decision.side_effect = lambda decision, all=True: decision
    system._trainer = trainer
    system.training_step({"wav": wav, "wav_lens": lens, "labels": labels, "utts": list("abcd")}, 0)
    assert logged["train/acc"] == 1.0
