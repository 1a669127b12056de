#!/usr/bin/env python
"""GPU benchmark: model steps, on-device augmentation, the training loop and extraction, each
beside SpeechBrain 1.1.2 in the same process on the same input, written to bench/RESULTS_gpu.md.

    python -m bench.bench_gpu --device cuda --data data/synthetic        # -> bench/RESULTS_gpu.md
    python -m bench.bench_gpu --device cpu --tiny --out /tmp/gpu.md      # the CPU smoke mode (tests)

Sections (``--only``):

- ``step``: one training step (forward + cross-entropy + backward + Adam) on ``B × 200`` frames of
  80-dim features held on the device: the x-vector (512×4, 1500, 512-dim embedding; SpeechBrain's
  ``Xvector``) and ECAPA-TDNN at C = 1024 (SpeechBrain's ``ECAPA_TDNN`` with the same channels);
  fp32 (``matmul_precision=highest``, cuDNN TF32 off), TF32 (``high``) and bf16 autocast;
  cuDNN autotuning on for both sides, one optimizer for both.
- ``augment``: speed perturbation (0.9/1.0/1.1) + reverberation + noise of a ``B × 2 s`` batch on
  the device: :class:`~xvector.data.batch_augment.BatchAugment` beside SpeechBrain's
  ``SpeedPerturb`` + ``AddReverb`` + ``AddNoise`` (which read their files in the call, from CSVs
  of the same folders, as in its recipes).
- ``loop``: ``xvector-train``'s loop (Lightning, the real loader, Fbank, the step) on a corpus:
  the full x-vector + AAM at batch 128, no augmentation, ``augment@data=synthetic`` in the workers
  and ``data.augment_on=device`` (fp32/TF32 and bf16), each against the same step on a batch held on
  the device (the ceiling); crops/s and ``perf/data_wait_frac`` are the epoch line's figures
  (mean over the epochs after the first); host syncs per step are counted with
  ``torch.cuda.set_sync_debug_mode``; GPU utilisation sampled with ``nvidia-smi``. Then the
  synthetic recipe's training (``experiment=synthetic_xvector_aam_aug data.augment_on=device``,
  12 epochs): seconds of epochs. SpeechBrain's loop lives in its recipes' ``Brain`` classes and
  has no counterpart run here (its augmentation is the ``augment`` row).
- ``extract``: embeddings of ``64 × 10 s`` including the front-end, fp32 and bf16, the x-vector
  (BatchNorms folded, as ``xvector-extract``) and ECAPA, beside SpeechBrain's ``Fbank`` + net.

On the H200 machine of ``../shared/gpu/GPU.md`` (no network; wheels from ``fetch_wheels.sh``
carried in ``.whl``), the whole run, about 5 minutes:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 3
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
    python3 scripts/make_synthetic_corpus.py --out data/synthetic --workers 16
    python3 -m bench.bench_gpu --device cuda --data data/synthetic --out $OUT/RESULTS_gpu.md

(then copy ``$OUT/RESULTS_gpu.md`` to ``bench/RESULTS_gpu.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Row, markdown  # noqa: E402
from xvector.atomic import atomic_write_text  # noqa: E402
from xvector.training.backends import apply_cuda_settings  # noqa: E402

SECTIONS = ("step", "augment", "loop", "extract")


def speechbrain_available() -> bool:
    try:
        import speechbrain  # noqa: F401
    except ImportError:
        return False
    return True


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, calls: int, repeats: int, warmup: int = 3) -> tuple[float, float, float]:
    """Seconds per call ``(median, min, max)`` over ``repeats`` groups of ``calls`` back-to-back calls
    (the device synchronised around each group only, as in training)."""
    for _ in range(warmup):
        fn()
    sync(device)
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync(device)
        per_call.append((time.perf_counter() - start) / calls)
    return statistics.median(per_call), min(per_call), max(per_call)


def per_second(seconds: tuple[float, float, float], amount: float) -> tuple[float, float, float]:
    med, lo, hi = seconds
    return amount / med, amount / hi, amount / lo


@contextlib.contextmanager
def precision(device: torch.device, name: str):
    """fp32: float32 throughout (TF32 off); tf32: matmul_precision=high; bf16: autocast over TF32."""
    previous = apply_cuda_settings(True, "highest" if name == "fp32" else "high") if device.type == "cuda" else None
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=name == "bf16"):
            yield
    finally:
        if previous is not None:
            apply_cuda_settings(previous[0], previous[1])
            torch.backends.cudnn.allow_tf32 = previous[2]


class Sizes:
    def __init__(self, tiny: bool, batch: int | None) -> None:
        self.batch = batch or (4 if tiny else 256)
        self.frames, self.classes = (40, 10) if tiny else (200, 1000)
        self.ecapa = (32, 32, 32, 32, 96) if tiny else (1024, 1024, 1024, 1024, 1536)
        self.xvector = (32, 32, 32, 32, 64) if tiny else (512, 512, 512, 512, 1500)
        self.embed = 16 if tiny else 512
        self.calls, self.repeats = (2, 2) if tiny else (10, 5)
        self.extract_batch, self.extract_sec = (2, 1.0) if tiny else (64, 10.0)
        self.loop_batch, self.loop_epochs = (4, 2) if tiny else (128, 4)


# --- model steps ----------------------------------------------------------------------------


def _adam_step(params, forward, labels):
    opt = torch.optim.Adam(list(params), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward().float(), labels).backward()
        opt.step()

    return step


def _nets(kind: str, s: Sizes, device: torch.device, peer: bool):
    from xvector.losses.margin import Softmax
    from xvector.nets.ecapa_tdnn import ECAPATDNN
    from xvector.nets.tdnn import XVector

    torch.manual_seed(0)
    if kind == "x-vector":
        ours = XVector(in_channels=80, channels=s.xvector, embed_dim=s.embed, segment_dims=[])
    else:
        ours = ECAPATDNN(in_channels=80, channels=s.ecapa, se_channels=128 if s.batch > 8 else 16,
                         attention_channels=128 if s.batch > 8 else 16)
    theirs = None
    if peer:
        from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
        from speechbrain.lobes.models.Xvector import Xvector

        if kind == "x-vector":
            theirs = Xvector(in_channels=80, tdnn_channels=list(s.xvector), lin_neurons=s.embed)
        else:
            theirs = ECAPA_TDNN(80, channels=list(s.ecapa), lin_neurons=192, se_channels=128 if s.batch > 8 else 16,
                                attention_channels=128 if s.batch > 8 else 16)
    head_in = ours.head_in_dim
    return ours.to(device), Softmax(head_in, s.classes).to(device), theirs, head_in


def bench_step(s: Sizes, device: torch.device, peer: bool) -> list[Row]:
    rows = []
    feats = torch.randn(s.batch, 80, s.frames, device=device)  # (B, F, T)
    feats_t = feats.transpose(1, 2).contiguous()  # (B, T, F): SpeechBrain's layout
    labels = torch.randint(0, s.classes, (s.batch,), device=device)
    for kind in ("x-vector", "ECAPA-TDNN"):
        ours, head, theirs, head_in = _nets(kind, s, device, peer)
        our_step = _adam_step([*ours.parameters(), *head.parameters()], lambda: head(ours(feats), labels), labels)
        if theirs is not None:
            theirs = theirs.to(device)
            their_head = torch.nn.Linear(head_in, s.classes).to(device)
            their_step = _adam_step([*theirs.parameters(), *their_head.parameters()],
                                    lambda: their_head(theirs(feats_t).squeeze(1)), labels)
        params = sum(p.numel() for p in ours.parameters())
        note = f"net params: xvector {params:,}"
        if theirs is not None:
            note += f", SpeechBrain {sum(p.numel() for p in theirs.parameters()):,}"
        for name in ("fp32", "tf32", "bf16") if device.type == "cuda" else ("fp32", "bf16"):
            with precision(device, name):
                t_ours = timed(our_step, device, s.calls, s.repeats)
                t_peer = timed(their_step, device, s.calls, s.repeats) if theirs is not None else None
            rows.append(Row(f"model step, {kind}, {s.batch} × {s.frames} frames × 80, {name}", "samples/s",
                            per_second(t_ours, s.batch), per_second(t_peer, s.batch) if t_peer else None, note))
    return rows


# --- on-device augmentation -----------------------------------------------------------------


def _speechbrain_csv(files: list[Path], path: Path) -> Path:
    import soundfile as sf

    lines = ["ID,duration,wav,wav_format,wav_opts"]
    lines += [f"f{i},{sf.info(str(f)).duration:.3f},{f},wav," for i, f in enumerate(files)]
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_augment(s: Sizes, device: torch.device, peer: bool, corpus: Path, work: Path) -> list[Row]:
    from xvector.corpora.synthetic.noise import ensure_augment_dirs
    from xvector.data.augment import AddNoise, Compose, Reverberate
    from xvector.data.batch_augment import BatchAugment, collate_planned
    from xvector.data.datasets import CropDataset
    from xvector.data.lists import load_data_dir

    aug_root = ensure_augment_dirs(corpus / "augment")
    reverb, noise = Reverberate(aug_root / "RIRS_NOISES"), AddNoise(aug_root / "musan/noise", snr_db=(0, 15))
    augment, speeds, chunk_sec = Compose({"reverb": reverb, "noise": noise}), (1.0, 0.9, 1.1), 2.0
    data = load_data_dir(corpus / "train")
    spk2idx = {spk: i for i, spk in enumerate(data.speakers)}
    crops = CropDataset(data.wavs, data.utt2spk, spk2idx, chunk_sec, seed=0, augment=augment, speeds=speeds,
                        on_device=True)
    batch = collate_planned([crops[(0, i % len(crops))] for i in range(s.loop_batch)])
    batch = {k: v for k, v in batch.items() if k != "utts"}
    from lightning.fabric.utilities.apply_func import move_data_to_device

    batch = move_data_to_device(batch, device)
    ours = BatchAugment(augment, speeds, 16000, crops.chunk).to(device)
    t_ours = timed(lambda: ours(batch), device, s.calls, s.repeats)
    t_peer, note = None, "xvector: rows of each speed resampled, RIR by FFT, noise cropped from the device bank"
    if peer:
        from speechbrain.augment.time_domain import AddNoise as SBNoise
        from speechbrain.augment.time_domain import AddReverb as SBReverb
        from speechbrain.augment.time_domain import SpeedPerturb

        sb_speed = SpeedPerturb(16000, speeds=[90, 100, 110], device=str(device))
        sb_reverb = SBReverb(str(_speechbrain_csv(reverb.files, work / "rirs.csv")))
        sb_noise = SBNoise(str(_speechbrain_csv(noise.files, work / "noise.csv")), snr_low=0, snr_high=15)
        wav = ours(batch)[0]
        lens = torch.ones(wav.shape[0], device=device)

        def theirs() -> None:
            sb_noise(sb_reverb(sb_speed(wav)), lens)

        t_peer = timed(theirs, device, s.calls, s.repeats)
        note += "; SpeechBrain: one speed per batch, files read through its DataLoader in the call"
    return [Row(f"augmentation of {s.loop_batch} × {chunk_sec:.0f} s on the device: speed + reverb + noise",
                "crops/s", per_second(t_ours, s.loop_batch), per_second(t_peer, s.loop_batch) if t_peer else None, note)]


# --- the training loop ----------------------------------------------------------------------


class _EpochFigures(L.Callback):
    """Per-epoch perf metrics (the epoch line's) and, on CUDA, host syncs inside the steps."""

    def __init__(self, count_syncs: bool) -> None:
        self.count_syncs = count_syncs
        self.rates: list[float] = []
        self.waits: list[float] = []
        self.seconds: list[float] = []
        self.syncs = self.steps = 0
        self._start, self._caught, self._seen = 0.0, None, []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.count_syncs and trainer.global_step >= 2:  # after cuDNN's tuning of the first steps
            self._caught = warnings.catch_warnings(record=True)
            self._seen = self._caught.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._caught is not None:
            torch.cuda.set_sync_debug_mode("default")
            self.syncs += sum("synchroniz" in str(w.message) for w in self._seen)
            self._caught.__exit__(None, None, None)
            self._caught = None
            self.steps += 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        metrics = trainer.callback_metrics
        self.rates.append(float(metrics["perf/crops_per_s"]))
        self.waits.append(float(metrics["perf/data_wait_frac"]))


class _Utilisation:
    """Mean GPU utilisation from ``nvidia-smi`` sampled every 200 ms while active (None without it)."""

    def __init__(self, device: torch.device) -> None:
        self.enabled = device.type == "cuda" and shutil.which("nvidia-smi") is not None
        self.samples: list[float] = []

    def __enter__(self):
        if self.enabled:
            index = torch.cuda.current_device()
            self.proc = subprocess.Popen(["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu",
                                          "--format=csv,noheader,nounits", "-lms", "200"],
                                         stdout=subprocess.PIPE, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append(float(line.strip()))

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.proc.terminate()
            self.proc.wait()

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from xvector import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def _step_alone(cfg, device: torch.device, s: Sizes, bf16: bool) -> tuple[float, float, float]:
    """The loop's step on a batch held on the device: Fbank + net + head + loss + backward + optimizer."""
    from xvector.cli.train import build

    system, _, _ = build(cfg)
    system = system.to(device).train()
    opt = system.optimizer_factory(system.parameters())
    chunk = int(cfg.data.chunk_sec * cfg.data.sample_rate)
    wav = 0.1 * torch.randn(s.loop_batch, chunk, device=device)
    labels = torch.randint(0, system.num_classes, (s.loop_batch,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            emb = system._embed(wav, None, augment=True)
            logits = system.head(system.embedder.net.classifier_input(emb), labels)
        F.cross_entropy(logits.float(), labels).backward()
        opt.step()

    with precision(device, "tf32"):
        return timed(step, device, s.calls, s.repeats)


def bench_loop(s: Sizes, device: torch.device, corpus: Path, work: Path, tiny: bool) -> list[Row]:
    from xvector.cli.train import build

    workers = 0 if tiny else max(1, min(14, (os.cpu_count() or 2) - 2))
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    net = (["model.channels=[32,32,32,32,64]", "model.embed_dim=16", "features.num_mel_bins=24"] if tiny else
           ["model=xvector", "features.num_mel_bins=80", "model.segment_dims=[]"])
    common = [f"paths.data_dir={corpus}", f"paths.output_dir={work / 'loop'}", "head=aam", "data.val_dir=null",
              f"data.batch_size={s.loop_batch}", f"data.num_workers={workers}", "~callbacks", "~logger",
              f"trainer.accelerator={accelerator}", f"trainer.max_epochs={s.loop_epochs}",
              "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0", *net]
    if tiny:
        common += ["data.chunk_sec=0.5", "trainer.limit_train_batches=2"]
    cases = [("no augmentation", [], False), ("augment@data=synthetic, in the workers", ["augment@data=synthetic"], False),
             ("augment@data=synthetic, data.augment_on=device", ["augment@data=synthetic", "data.augment_on=device"], False),
             ("augment@data=synthetic, data.augment_on=device, bf16-mixed",
              ["augment@data=synthetic", "data.augment_on=device", "trainer.precision=bf16-mixed"], True)]
    rows, ceilings = [], {}
    for what, extra, bf16 in cases:
        cfg = _compose(common + extra)
        if bf16 not in ceilings:
            ceilings[bf16] = per_second(_step_alone(cfg, device, s, bf16), s.loop_batch)
            rows.append(Row(f"training step alone, {'' if tiny else 'full '}x-vector + AAM, {s.loop_batch} × {cfg.data.chunk_sec:g} s "
                            f"(batch on the device){', bf16' if bf16 else ''}", "crops/s", ceilings[bf16],
                            note="the loop's ceiling: Fbank + net + head + backward + AdamW"))
        system, datamodule, trainer = build(cfg)
        figures = _EpochFigures(count_syncs=device.type == "cuda")
        trainer.callbacks.append(figures)
        with _Utilisation(device) as util:
            trainer.fit(system, datamodule=datamodule)
        later = slice(1, None)  # the first epoch starts the workers and tunes cuDNN
        rate = statistics.mean(figures.rates[later])
        wait = statistics.mean(figures.waits[later])
        note = (f"{100 * rate / ceilings[bf16][0]:.0f}% of the step alone; data wait {100 * wait:.0f}%; "
                f"{workers} loader workers")
        if figures.steps:
            note += f"; host syncs per step {figures.syncs / figures.steps:.2f}"
        if util.mean is not None:
            note += f"; GPU utilisation {util.mean:.0f}%"
        rows.append(Row(f"training loop ({what}), {s.loop_batch} × {cfg.data.chunk_sec:g} s", "crops/s",
                        (rate, min(figures.rates[later]), max(figures.rates[later])), note=note))
    recipe = ["experiment=synthetic_xvector_aam_aug", "data.augment_on=device", f"paths.data_dir={corpus}",
              f"paths.output_dir={work / 'recipe'}", f"data.num_workers={workers}",
              f"trainer.accelerator={accelerator}", "trainer.enable_progress_bar=false"]
    if tiny:
        recipe += ["trainer.max_epochs=2", "trainer.limit_train_batches=2", *net[:2], "data.batch_size=4",
                   "data.chunk_sec=0.5"]
    cfg = _compose(recipe)
    system, datamodule, trainer = build(cfg)
    figures = _EpochFigures(count_syncs=False)
    trainer.callbacks.append(figures)
    trainer.fit(system, datamodule=datamodule)
    total = sum(figures.seconds)
    eer = trainer.callback_metrics.get("val/eer")
    rows.append(Row(f"synthetic recipe training (experiment=synthetic_xvector_aam_aug data.augment_on=device), "
                    f"{len(figures.seconds)} epochs", "s of epochs", (total, total, total),
                    note=f"validation included; final val/eer {float(eer):.4f}" if eer is not None else ""))
    return rows


# --- extraction -----------------------------------------------------------------------------


def bench_extract(s: Sizes, device: torch.device, peer: bool) -> list[Row]:
    from xvector.features.fbank import Fbank
    from xvector.inference.embedder import Embedder, for_inference
    from xvector.nets.ecapa_tdnn import ECAPATDNN
    from xvector.nets.tdnn import XVector

    torch.manual_seed(0)
    samples = int(s.extract_sec * 16000)
    wav = 0.1 * torch.randn(s.extract_batch, samples, device=device)
    lens = torch.full((s.extract_batch,), samples, device=device)
    audio = s.extract_batch * s.extract_sec
    rows = []
    for kind in ("x-vector", "ECAPA-TDNN"):
        net = (XVector(in_channels=80, channels=s.xvector, embed_dim=s.embed, segment_dims=[]) if kind == "x-vector"
               else ECAPATDNN(in_channels=80, channels=s.ecapa))
        trained = Embedder(Fbank(num_mel_bins=80), net).eval()
        for m in trained.modules():  # statistics as after training (speed does not depend on them)
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(0.0, 1.0)
                m.running_var.uniform_(0.5, 2.0)
        ours = for_inference(trained).to(device)
        theirs = None
        if peer:
            from speechbrain.lobes.features import Fbank as SBFbank
            from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
            from speechbrain.lobes.models.Xvector import Xvector

            sb_net = (Xvector(in_channels=80, tdnn_channels=list(s.xvector), lin_neurons=s.embed) if kind == "x-vector"
                      else ECAPA_TDNN(80, channels=list(s.ecapa), lin_neurons=192))
            sb_fbank, sb_net = SBFbank(n_mels=80).to(device).eval(), sb_net.to(device).eval()

            def theirs() -> torch.Tensor:
                with torch.autocast(device.type, enabled=False):
                    feats = sb_fbank(wav)
                return sb_net(feats)

        for name in ("fp32", "bf16"):
            with torch.inference_mode(), precision(device, name):
                t_ours = timed(lambda: ours(wav, lens), device, max(1, s.calls // 2), s.repeats)
                t_peer = timed(theirs, device, max(1, s.calls // 2), s.repeats) if theirs is not None else None
            rows.append(Row(f"extraction, {kind}, {s.extract_batch} × {s.extract_sec:.0f} s, front-end included, {name}",
                            "audio s/s", per_second(t_ours, audio), per_second(t_peer, audio) if t_peer else None,
                            "xvector-extract's form (BatchNorms folded for the x-vector); fbank 80 both sides"))
    return rows


# --- the targets --------------------------------------------------------------------


def targets(rows: list[Row]) -> list[str]:
    """Issue 19's targets, each met or not, from this run's rows."""
    def find(*parts: str) -> list[Row]:
        return [r for r in rows if all(p in r.figure for p in parts)]

    out = []
    steps = {f"{r.figure.split(', ')[1]} {r.figure.rsplit(', ', 1)[1]}": r.ratio for r in find("model step")
             if r.ratio is not None}
    bf16 = {k: v for k, v in steps.items() if k.endswith("bf16")}
    if bf16:
        out.append(f"- Model steps ≥ 1.5x SpeechBrain in bf16: "
                   f"{', '.join(f'{k} {v:.2f}x' for k, v in bf16.items())}: "
                   f"**{'met' if min(bf16.values()) >= 1.5 else 'not met'}**.")
    loops = find("training loop", "augment_on=device")
    ceiling = find("training step alone")
    if loops and ceiling:
        best = max(r.ours[0] / next(c for c in ceiling if ("bf16" in c.figure) == ("bf16" in r.figure)).ours[0]
                   for r in loops)
        out.append(f"- Training loop with augmentation and speed perturbation ≥ 0.9 of the step alone: {best:.2f}: "
                   f"**{'met' if best >= 0.9 else 'not met'}**.")
    extract = {r.figure.split(", ")[1] + " " + r.figure.rsplit(", ", 1)[1]: r.ratio for r in find("extraction")
               if r.ratio is not None}
    if extract:
        out.append(f"- Extraction ≥ 2x SpeechBrain: {', '.join(f'{k} {v:.2f}x' for k, v in extract.items())}: "
                   f"**{'met' if max(extract.values()) >= 2 else 'not met'}**.")
    recipe = find("synthetic recipe training")
    if recipe:
        out.append(f"- Synthetic recipe in ≤ 10 s of epochs: {recipe[0].ours[0]:.1f} s: "
                   f"**{'met' if recipe[0].ours[0] <= 10 else 'not met'}**.")
    return ["", "## Targets (from this run)", "", *out] if out else []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda | cpu (cuda:1 etc. also)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--tiny", action="store_true", help="tiny nets and inputs: the CPU smoke mode")
    parser.add_argument("--batch", type=int, default=None, help="model-step batch (default 256)")
    parser.add_argument("--data", help="a corpus root with train/ (default: a small synthetic one made here)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_gpu.md"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (use --device cpu --tiny for the smoke mode)")
    s = Sizes(args.tiny, args.batch)
    peer = speechbrain_available()
    print(f"SpeechBrain {'found' if peer else 'not installed: peer figures skipped'}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="xvector-bench-gpu-"))
    corpus = Path(args.data) if args.data else None
    if corpus is None and {"augment", "loop"} & set(args.only):
        from xvector.corpora.synthetic.corpus import make_corpus

        corpus = work / "corpus"
        n_spk, n_utt = (6, 4) if args.tiny else (200, 10)
        make_corpus(corpus, n_train_speakers=n_spk, n_train_utts=n_utt, n_test_speakers=4, n_test_utts=2,
                    n_dev_speakers=4, n_dev_utts=3, min_sec=1.0 if args.tiny else 2.0, max_sec=2.0 if args.tiny else 6.0,
                    num_workers=min(16, os.cpu_count() or 1))
    runners = {
        "step": lambda: bench_step(s, device, peer),
        "augment": lambda: bench_augment(s, device, peer, corpus, work),
        "loop": lambda: bench_loop(s, device, corpus, work, args.tiny),
        "extract": lambda: bench_extract(s, device, peer),
    }
    rows: list[Row] = []
    try:
        for name in args.only:
            section = runners[name]()
            for r in section:
                ratio = "" if r.ratio is None else f"  ratio {r.ratio:.2f}x"
                peer_txt = "" if r.peer is None else f"  SpeechBrain {r.peer[0]:.4g}"
                print(f"[{name}] {r.figure}: {r.ours[0]:.4g} {r.unit}{peer_txt}{ratio}", flush=True)
            rows += section
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python -m bench.bench_gpu " + " ".join(argv if argv is not None else sys.argv[1:])
    notes = []
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        notes.append(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
                     f"cuDNN {torch.backends.cudnn.version()}.")
    else:
        notes.append(f"Device: {device} (the smoke mode: figures are not GPU figures).")
    if not peer:
        notes.append("SpeechBrain is not installed (`pip install -e '.[bench]'`): peer figures skipped.")
    notes += targets(rows)
    atomic_write_text(args.out, markdown("GPU benchmarks: xvector beside SpeechBrain", command.strip(), rows, notes))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
