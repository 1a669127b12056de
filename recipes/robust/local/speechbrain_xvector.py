#!/usr/bin/env python
"""The peer: SpeechBrain 1.1.2's x-vector, trained on a Kaldi data dir with its VoxCeleb recipe.

    python recipes/robust/local/speechbrain_xvector.py --train-dir D/train --out exp/sb \\
        --time-budget-min 12 --threads 2 --embed train=D/train/wav.scp --embed test=D/test/wav.scp
    xvector-score embeddings=exp/sb/test.npz trials=D/test/trials mean_embeddings=exp/sb/train.npz

Everything that decides accuracy is SpeechBrain's own code with the settings of
``recipes/VoxCeleb/SpeakerRec/hparams/train_x_vectors.yaml`` and ``train_speaker_embeddings.py``
(identical at tag v1.1.0 and on develop; the pip package carries no recipes):

- features ``speechbrain.lobes.features.Fbank(n_mels=24, left_frames=0, right_frames=0,
  deltas=False)``, then ``speechbrain.processing.features.InputNormalization(norm_type="sentence",
  std_norm=False)`` (per-utterance mean subtraction);
- ``speechbrain.lobes.models.Xvector.Xvector`` (LeakyReLU, TDNN 512-512-512-512-1500, kernels
  5-3-3-1-1, dilations 1-2-3-1-1, 512-dim embedding) and ``Xvector.Classifier`` (one 512 block,
  a log-softmax output): **plain softmax** with ``speechbrain.nnet.losses.nll_loss``, no margin;
- ``torch.optim.Adam(lr=0.001, weight_decay=2e-6)``, the learning rate set once per epoch by
  ``speechbrain.nnet.schedulers.LinearScheduler(0.001, 0.0001, epochs)``; gradients clipped to
  norm 5 (``Brain``'s default ``max_grad_norm``); batch 256; seed 1986 through
  ``speechbrain.utils.seed_everything``;
- data as ``voxceleb_prepare.py`` + the recipe's audio pipeline make it: every utterance gives
  ``floor(duration / 3 s)`` rows (chunks whose mean |x| is under ``amp_th`` 5e-4 dropped, so
  utterances under 3 s are not used), and each row reads a random 3 s chunk of its utterance
  (``random_chunk: True``), newly drawn every epoch;
- with ``--augment DIR`` the recipe's ``Augmenter`` (parallel, original concatenated, all four
  of AddNoise SNR 0–15 dB, AddReverb, DropFreq, DropChunk, so each batch is 5× the rows). The
  recipe has no speed perturbation. Noise and RIRs come from ``DIR/musan/noise`` and
  ``DIR/RIRS_NOISES`` (MUSAN/RIRS_NOISES layout; xvector writes synthetic ones there when DIR
  has neither, as ``scripts/make_augment_dirs.py --out DIR`` does);
- embeddings as ``speaker_verification_cosine.py`` computes them: the whole utterance through
  ``compute_features``, ``mean_var_norm`` and ``embedding_model`` (one utterance at a time).

What differs from running their recipe: a plain torch loop replaces ``Brain`` (the same
forward, loss, clipping and step); the recipe's 90/10 utterance split, used there only to log a
validation classification error, is not made — all training utterances train (their
verification loads the latest checkpoint, not a selected one); the epoch count can be fitted
to a time budget (``--time-budget-min``: renewed after every epoch by ours' rule, the
``LinearScheduler`` rebuilt over each new count; until 2026-12-06 it was fixed from the first
epoch's time, whose start-up made it short); ``--chunk-sec`` below 3 s lets shorter utterances in.
Extraction seeds the RNG before each utterance, so the tiny Gaussian noise that SpeechBrain's
``StatisticsPooling`` adds to the mean (1e-5..9e-5, in eval mode too) is the same on reruns. Writes ``OUT/model.pt`` (state dicts),
``OUT/train_log.txt``, ``OUT/train_summary.json`` and one ``OUT/<name>.npz`` per ``--embed``
(xvector's embedding format, scored by ``xvector-score``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from xvector.atomic import atomic_output, atomic_write_text
from xvector.data.audio import audio_info, load_audio
from xvector.data.lists import load_data_dir, read_wav_scp
from xvector.embeddings import save_embeddings
from xvector.training.time_budget import REGROW_FRAC, RENEW_WINDOW, epochs_that_fit, replan

log = logging.getLogger("speechbrain_xvector")

SAMPLE_RATE = 16000
# train_x_vectors.yaml (and Brain's run-option defaults where marked).
RECIPE = {
    "seed": 1986, "number_of_epochs": 20, "batch_size": 256, "lr": 0.001, "lr_final": 0.0001,
    "weight_decay": 0.000002, "sentence_len": 3.0, "n_mels": 24, "emb_dim": 512,
    "tdnn_channels": [512, 512, 512, 512, 1500], "tdnn_kernel_sizes": [5, 3, 3, 1, 1],
    "tdnn_dilations": [1, 2, 3, 1, 1], "max_grad_norm": 5.0,  # Brain's default run option
    "amp_th": 5e-4,  # voxceleb_prepare.prepare_voxceleb's default
    "snr_low": 0, "snr_high": 15,
}


def build_modules(n_speakers: int) -> dict[str, torch.nn.Module]:
    """The recipe's ``modules``: compute_features, mean_var_norm, embedding_model, classifier."""
    from speechbrain.lobes.features import Fbank
    from speechbrain.lobes.models.Xvector import Classifier, Xvector
    from speechbrain.processing.features import InputNormalization

    emb = RECIPE["emb_dim"]
    return {
        "compute_features": Fbank(n_mels=RECIPE["n_mels"], left_frames=0, right_frames=0, deltas=False),
        "mean_var_norm": InputNormalization(norm_type="sentence", std_norm=False),
        "embedding_model": Xvector(
            in_channels=RECIPE["n_mels"], activation=torch.nn.LeakyReLU, tdnn_blocks=5,
            tdnn_channels=RECIPE["tdnn_channels"], tdnn_kernel_sizes=RECIPE["tdnn_kernel_sizes"],
            tdnn_dilations=RECIPE["tdnn_dilations"], lin_neurons=emb),
        "classifier": Classifier(input_shape=[None, None, emb], activation=torch.nn.LeakyReLU,
                                 lin_blocks=1, lin_neurons=emb, out_neurons=n_speakers),
    }


def build_augmenter(augment_dir: Path, out: Path, workers: int):
    """The recipe's ``wav_augment`` over the noise and RIR files under ``augment_dir``."""
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.preparation import prepare_csv
    from speechbrain.augment.time_domain import AddNoise, AddReverb, DropChunk, DropFreq

    from xvector.corpora.synthetic.noise import ensure_augment_dirs

    if not (augment_dir / "musan").is_dir() and not (augment_dir / "RIRS_NOISES").is_dir():
        ensure_augment_dirs(augment_dir)  # synthetic stand-ins in the same layout
    csvs = {}
    # RIRS_NOISES also holds noise recordings (pointsource_noises, real_rirs_isotropic_noises):
    # take its simulated RIRs when it has them.
    rirs = "RIRS_NOISES/simulated_rirs" if (augment_dir / "RIRS_NOISES/simulated_rirs").is_dir() else "RIRS_NOISES"
    for kind, sub in (("noise", "musan/noise"), ("rir", rirs)):
        files = sorted(str(p) for p in (augment_dir / sub).rglob("*.wav"))
        if not files:
            raise ValueError(f"{augment_dir / sub}: no .wav files for the recipe's {kind} augmentation")
        csvs[kind] = out / f"{kind}.csv"
        prepare_csv(files, str(csvs[kind]))  # their csv writer (ID, duration, wav, ...)
        log.info("augmentation: %d %s files from %s", len(files), kind, augment_dir / sub)
    return Augmenter(
        parallel_augment=True, concat_original=True, min_augmentations=4, max_augmentations=4,
        augment_prob=1.0, augmentations=[
            AddNoise(csv_file=str(csvs["noise"]), snr_low=RECIPE["snr_low"], snr_high=RECIPE["snr_high"],
                     noise_sample_rate=SAMPLE_RATE, clean_sample_rate=SAMPLE_RATE, num_workers=workers),
            AddReverb(csv_file=str(csvs["rir"]), reverb_sample_rate=SAMPLE_RATE,
                      clean_sample_rate=SAMPLE_RATE, num_workers=workers),
            DropFreq(drop_freq_low=0, drop_freq_high=1, drop_freq_count_low=1, drop_freq_count_high=3,
                     drop_freq_width=0.05),
            DropChunk(drop_length_low=1000, drop_length_high=2000, drop_count_low=1, drop_count_high=5),
        ])


class Row(NamedTuple):
    """One training example as the recipe's csv has it: an utterance to draw a chunk from."""

    utt: str
    path: Path
    num_samples: int
    label: int


def make_rows(train_dir: Path, chunk_sec: float) -> tuple[list[Row], list[str], dict]:
    """``voxceleb_prepare.prepare_csv``'s rows for a Kaldi data dir, the speakers, and counts."""
    data = load_data_dir(train_dir)
    speakers = data.speakers
    index = {spk: i for i, spk in enumerate(speakers)}
    chunk = int(chunk_sec * SAMPLE_RATE)
    rows, short, quiet = [], 0, 0
    for utt, path in data.wavs.items():
        num_samples, rate = audio_info(path, name=f"{utt} ({path})")
        if rate != SAMPLE_RATE:
            raise ValueError(f"{utt} ({path}): sample rate {rate} Hz, the recipe needs {SAMPLE_RATE} Hz")
        n_chunks = num_samples // chunk  # _get_chunks: int(duration / seg_dur)
        if n_chunks == 0:
            short += 1
            continue
        wav = load_audio(path, SAMPLE_RATE, name=f"{utt} ({path})")
        for k in range(n_chunks):  # "Avoid chunks with very small energy"
            if np.abs(wav[k * chunk:(k + 1) * chunk]).mean() < RECIPE["amp_th"]:
                quiet += 1
                continue
            rows.append(Row(utt, path, num_samples, index[data.utt2spk[utt]]))
    counts = {"utterances": len(data.wavs), "speakers": len(speakers), "rows": len(rows),
              "short_utterances_dropped": short, "quiet_chunks_dropped": quiet}
    if not rows:
        raise ValueError(f"{train_dir}: no training rows (every utterance is shorter than {chunk_sec} s "
                         "or too quiet; try a smaller --chunk-sec)")
    return rows, speakers, counts


class RandomChunks(torch.utils.data.Dataset):
    """Row ``i`` → ``(wav (chunk,), label)``: a random chunk, as the recipe's ``audio_pipeline``
    with ``random_chunk: True`` (``random.randint``, seeded by ``seed_everything`` and per worker
    by the DataLoader)."""

    def __init__(self, rows: list[Row], chunk_sec: float) -> None:
        self.rows, self.chunk = rows, int(chunk_sec * SAMPLE_RATE)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        row = self.rows[i]
        start = random.randint(0, row.num_samples - self.chunk)
        return torch.from_numpy(load_audio(row.path, SAMPLE_RATE, start, self.chunk, name=row.utt)), row.label


def collate(items: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """→ ``wavs (B, S)``, ``lens (B,)`` (relative, all 1), ``labels (B, 1)`` (``spk_id_encoded``'s shape)."""
    wavs, labels = zip(*items)
    return torch.stack(wavs), torch.ones(len(wavs)), torch.tensor(labels)[:, None]


def features(modules: dict, wavs: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """``wavs (B, S)`` → normalised Fbank ``(B, T, 24)`` (compute_features, mean_var_norm)."""
    return modules["mean_var_norm"](modules["compute_features"](wavs), lens)


def epoch_seconds(durations: list[float]) -> float:
    """An epoch's time (s) for the budget: the median of the last ``RENEW_WINDOW`` epochs after
    the first (which pays for start-up: 32 s against 22-24 s at 24 speakers), or the first alone."""
    return statistics.median(durations[1:][-RENEW_WINDOW:] or durations)


def budget_epochs(budget_sec: float, planned: int | None, epochs_done: int, elapsed_sec: float,
                  durations: list[float]) -> int:
    """The epochs to plan after ``epochs_done`` epochs that took ``durations`` s, ``elapsed_sec``
    into a budget of ``budget_sec``: ours' rule (:func:`xvector.training.time_budget.replan`),
    so the plan shortens when epochs slow down and lengthens, in its first half, when a slow
    first epoch made it short. ``planned`` is None before the first plan.

    Example (a 12-minute budget, a first epoch slower than the next):
        >>> budget_epochs(720, None, 1, 32.0, [32.0]), budget_epochs(720, 22, 2, 55.0, [32.0, 23.0])
        (22, 30)
    """
    fit = epochs_that_fit(budget_sec, epochs_done, elapsed_sec, epoch_seconds(durations))
    return fit if planned is None else replan(planned, fit, epochs_done, REGROW_FRAC)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train(args: argparse.Namespace, out: Path) -> dict:
    """Train as the recipe does; returns the summary written to ``train_summary.json``."""
    import speechbrain as sb
    from speechbrain.nnet.losses import nll_loss
    from speechbrain.nnet.schedulers import LinearScheduler, update_learning_rate

    sb.utils.seed_everything(args.seed)
    rows, speakers, counts = make_rows(Path(args.train_dir), args.chunk_sec)
    log.info("data: %s", json.dumps(counts))
    modules = build_modules(len(speakers))
    trainable = torch.nn.ModuleDict(modules)
    params = {"embedding_model": n_params(modules["embedding_model"]),
              "classifier": n_params(modules["classifier"])}
    log.info("parameters: embedding_model %d, classifier %d (%d speakers)",
             params["embedding_model"], params["classifier"], len(speakers))
    augment = build_augmenter(Path(args.augment), out, args.workers) if args.augment else None
    optimizer = torch.optim.Adam(trainable.parameters(), lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])
    loader = torch.utils.data.DataLoader(
        RandomChunks(rows, args.chunk_sec), batch_size=args.batch_size, shuffle=True,
        num_workers=args.workers, collate_fn=collate, drop_last=False)
    budget_sec = args.time_budget_min * 60 if args.time_budget_min else math.inf
    epochs = args.epochs or (None if args.time_budget_min else RECIPE["number_of_epochs"])
    fitted = epochs is None  # the epoch count follows the budget, renewed after every epoch
    annealing = LinearScheduler(RECIPE["lr"], RECIPE["lr_final"], epochs) if epochs else None
    history, durations, start, stopped, epoch = [], [], time.perf_counter(), False, 0
    while not stopped and (epochs is None or epoch < epochs):
        epoch += 1
        trainable.train()
        t0, cpu0, loss_sum, correct, seen, batches = time.perf_counter(), time.process_time(), 0.0, 0, 0, 0
        lr = optimizer.param_groups[0]["lr"]
        for step, (wavs, lens, labels) in enumerate(loader, start=1):
            if len(wavs) < 2:  # BatchNorm cannot train on one example; the recipe would fail here
                continue
            if augment is not None:
                wavs, lens = augment(wavs, lens)
                labels = augment.replicate_labels(labels)
            # SpeakerBrain.compute_forward: the embedding model without lens (all chunks are
            # full; with lens, StatisticsPooling loops over the batch and its backward is O(B²)).
            embeddings = modules["embedding_model"](features(modules, wavs, lens))  # (B, 1, 512)
            predictions = modules["classifier"](embeddings)  # (B, 1, n_speakers) log-probabilities
            loss = nll_loss(predictions, labels, lens)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], RECIPE["max_grad_norm"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            batches += 1
            loss_sum += loss.item() * len(labels)
            correct += int((predictions[:, 0].argmax(-1) == labels[:, 0]).sum())
            seen += len(labels)
            if time.perf_counter() - start >= budget_sec:
                # the budget stops training after the current batch, mid-epoch or not
                stopped, complete = True, step == len(loader)
                break
        else:
            complete = True
        epoch_sec = time.perf_counter() - t0
        record = {"epoch": epoch, "lr": lr, "loss": loss_sum / max(seen, 1), "acc": correct / max(seen, 1),
                  "examples": seen, "batches": batches, "complete": complete,
                  "epoch_sec": round(epoch_sec, 2), "epoch_cpu_sec": round(time.process_time() - cpu0, 2),
                  "wall_sec": round(time.perf_counter() - start, 2)}
        history.append(record)
        log.info("epoch %d%s  lr %.2e  train/loss %.4f  train/acc %.4f  %d examples  %.1f s wall, "
                 "%.1f s CPU (total %.1f s wall)", epoch, "" if record["complete"] else " (partial: budget spent)",
                 lr, record["loss"], record["acc"], seen, epoch_sec, record["epoch_cpu_sec"], record["wall_sec"])
        durations.append(epoch_sec)
        if fitted:  # (after the budget is spent too: the plan is then the epochs done)
            planned = budget_epochs(budget_sec, epochs, epoch, record["wall_sec"], durations)
            if planned != epochs:  # anneal over the whole epochs that fit in the budget
                log.info("time budget %.1f min: %d epochs of %.1f s fit, learning rate annealed over them",
                         args.time_budget_min, planned, epoch_seconds(durations))
                epochs, annealing = planned, LinearScheduler(RECIPE["lr"], RECIPE["lr_final"], planned)
        record["epochs_planned"] = epochs
        update_learning_rate(optimizer, annealing(epoch)[1])
    state = {"embedding_model": modules["embedding_model"].state_dict(),
             "classifier": modules["classifier"].state_dict(), "speakers": speakers,
             "recipe": RECIPE, "args": vars(args)}
    with atomic_output(out / "model.pt", suffix=".pt") as tmp:
        torch.save(state, tmp)
    return {"params": params, "data": counts, "epochs_planned": epochs, "epochs": history,
            "train_sec": round(time.perf_counter() - start, 2), "augment": args.augment,
            "threads": torch.get_num_threads(), "speechbrain": sb.__version__}


def load_embedding_modules(model_path: Path) -> dict[str, torch.nn.Module]:
    """compute_features, mean_var_norm and the trained embedding_model, in eval mode."""
    state = torch.load(model_path, map_location="cpu", weights_only=True)
    modules = build_modules(len(state["speakers"]))
    modules["embedding_model"].load_state_dict(state["embedding_model"])
    del modules["classifier"]
    for m in modules.values():
        m.eval()
    return modules


@torch.no_grad()
def embed_utterance(modules: dict, wav: np.ndarray, seed: int = 0) -> np.ndarray:
    """``speaker_verification_cosine.compute_embedding`` for one whole utterance → ``(512,)``.

    The RNG is seeded (then restored) for StatisticsPooling's noise: reruns give equal vectors."""
    wavs, lens = torch.from_numpy(wav)[None], torch.ones(1)  # (1, S), (1,)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        emb = modules["embedding_model"](features(modules, wavs, lens), lens)  # (1, 1, 512)
    return emb[0, 0].numpy()


def embed_wav_scp(modules: dict, wav_scp: Path) -> tuple[list[str], np.ndarray]:
    wavs = read_wav_scp(wav_scp)
    ids = list(wavs)
    emb = np.stack([embed_utterance(modules, load_audio(wavs[u], SAMPLE_RATE, name=f"{u} ({wavs[u]})"))
                    for u in ids])
    return ids, emb


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-dir", help="Kaldi data dir (wav.scp, utt2spk; 16 kHz); omit with --skip-training")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs, also the LinearScheduler's length (default: the recipe's 20, or with "
                        "--time-budget-min the whole epochs that fit, renewed after every epoch)")
    p.add_argument("--time-budget-min", type=float, default=None,
                   help="stop training after the batch that spends this many minutes (mid-epoch or not)")
    p.add_argument("--seed", type=int, default=RECIPE["seed"])
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (the recipe: 4)")
    p.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    p.add_argument("--chunk-sec", type=float, default=RECIPE["sentence_len"], help="sentence_len")
    p.add_argument("--augment", metavar="DIR", default=None,
                   help="the recipe's augmentation with DIR/musan/noise and DIR/RIRS_NOISES "
                        "(synthetic ones are written there when DIR has neither)")
    p.add_argument("--embed", action="append", default=[], metavar="NAME=WAV_SCP",
                   help="after training, write OUT/NAME.npz for WAV_SCP (repeatable)")
    p.add_argument("--skip-training", action="store_true", help="only --embed, with OUT/model.pt")
    args = p.parse_args(argv)
    if not args.skip_training and not args.train_dir:
        p.error("--train-dir is required (or --skip-training)")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be at least 1")
    if args.time_budget_min is not None and args.time_budget_min <= 0:
        p.error("--time-budget-min must be positive")
    for spec in args.embed:
        if "=" not in spec or not spec.split("=", 1)[0]:
            p.error(f"--embed wants NAME=WAV_SCP, got {spec!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.StreamHandler(), logging.FileHandler(out / "train_log.txt")], force=True)
    log.info("command: %s", " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])))
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if not args.skip_training:
            summary = train(args, out)
            atomic_write_text(out / "train_summary.json", json.dumps(summary, indent=2) + "\n")
        modules = load_embedding_modules(out / "model.pt")
        for spec in args.embed:
            name, wav_scp = spec.split("=", 1)
            t0 = time.perf_counter()
            ids, emb = embed_wav_scp(modules, Path(wav_scp))
            save_embeddings(out / f"{name}.npz", ids, emb)
            log.info("wrote %d embeddings (%d-dim) of %s to %s in %.1f s", len(ids), emb.shape[1],
                     wav_scp, out / f"{name}.npz", time.perf_counter() - t0)
    except (ValueError, FileNotFoundError) as err:
        print(f"speechbrain_xvector: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
