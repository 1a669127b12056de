#!/usr/bin/env python
"""Embed and score one system on a robustness corpus: clean, same-language and noisy trials.

    python recipes/robust/local/evaluate.py --data data/robust/tts --split dev \
        --model exp/robust/tts/xvector/checkpoints/last.ckpt --exp exp/robust/tts/xvector --name xvector
    python recipes/robust/local/evaluate.py --data ... --split test --baseline mfcc --exp exp/robust/tts/mfcc
    python recipes/robust/local/evaluate.py --data ... --split test --embeddings-only --exp exp/robust/tts/sb

Embeddings of ``train`` and of ``<split>`` / ``<split>_noisy`` are written to ``<exp>/<dir>.npz``
(kept when present, so a peer that wrote its own, e.g. SpeechBrain's, is scored the same way),
then three trial lists are scored: ``<split>/trials`` (clean), ``<split>/trials_same_lang`` and
``<split>_noisy/trials`` (and ``<split>_channel/trials``, condition ``channel``, when that copy
through a harsher channel exists: ``local/harsh_channel.py``), each with cosine after subtracting
the training-embedding mean and with AS-norm of those cosine scores (top 100 of the training
utterances as cohort), and with centre → LDA (capped at speakers − 1) → PLDA, trained on the
training embeddings and, when the corpus has ``train_aug`` (corrupted copies of ``train``,
``scripts/augment_data_dir.py``), once more on those and their copies' together (back end
``plda_aug``, as Kaldi trains its PLDA on augmented data). Metrics go to ``<exp>/<split>.json``:
one entry per (back end, condition) with EER and minDCF(0.01); PLDA scores are uncalibrated
LLRs, so no Cllr or actDCF is reported for them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from xvector.atomic import atomic_write_text
from xvector.data.lists import read_kaldi_map, read_trials
from xvector.embeddings import load_embeddings, load_labelled_embeddings, save_embeddings
from xvector.inference.extraction import embed_wav_scp
from xvector.metrics import verification_metrics
from xvector.scoring.cosine import score_trials, trial_labels
from xvector.scoring.lda import KaldiChain
from xvector.scoring.norm import ScoreNorm

ROOT = Path(__file__).resolve().parents[3]
CONDITIONS = {"clean": ("{split}", "trials"), "same_lang": ("{split}", "trials_same_lang"),
              "noisy": ("{split}_noisy", "trials"), "channel": ("{split}_channel", "trials")}
OPTIONAL = ("channel",)  # scored when its folder exists
log = logging.getLogger("evaluate")


def embedder_for(args: argparse.Namespace) -> torch.nn.Module:
    if args.baseline == "mfcc":
        spec = importlib.util.spec_from_file_location("mean_mfcc", ROOT / "scripts" / "mean_mfcc_embeddings.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.MeanMFCC().eval()
    import xvector

    return xvector.load_model(args.model).embedder


def up_to_date(npz: Path, wav_scp: Path) -> bool:
    """Whether ``npz`` exists and embeds exactly the utterances of ``wav_scp`` (a ``train_aug``
    remade with another number of copies makes its old embeddings stale)."""
    if not npz.is_file():
        return False
    ids, _ = load_embeddings(npz)
    return sorted(ids) == sorted(read_kaldi_map(wav_scp, check_sorted=False))


def embed(args: argparse.Namespace, dirs: list[str], optional: tuple[str, ...] = ()) -> dict[str, float]:
    """Write ``<exp>/<dir>.npz`` for every dir that has none yet, or a stale one; returns seconds per dir.

    With ``--embeddings-only`` the ``optional`` dirs may be missing (their back ends are left out).
    """
    exp, data = Path(args.exp), Path(args.data)
    todo = [d for d in dirs if not up_to_date(exp / f"{d}.npz", data / d / "wav.scp")]
    if args.embeddings_only:  # nothing to embed with: a stale file, or a missing required one, is an error
        if bad := [str(exp / f"{d}.npz") for d in todo if d not in optional or (exp / f"{d}.npz").is_file()]:
            raise SystemExit(f"--embeddings-only: missing, or not the utterances of {data}/<dir>/wav.scp: {bad}")
        return {}
    times = {}
    embedder = embedder_for(args) if todo else None
    for d in todo:
        t0 = time.perf_counter()
        ids, emb = embed_wav_scp(embedder, data / d / "wav.scp", batch_size=16)
        save_embeddings(exp / f"{d}.npz", ids, emb)
        times[d] = round(time.perf_counter() - t0, 1)
        log.info("embedded %s: %d utterances in %.1f s", d, len(ids), times[d])
    return times


def score(args: argparse.Namespace) -> dict:
    exp, data = Path(args.exp), Path(args.data)
    train_ids, train_emb, labels = load_labelled_embeddings([(exp / "train.npz", data / "train" / "utt2spk")])
    mean = train_emb.mean(0)
    lda_dim = min(200, len(set(labels.tolist())) - 1)
    backends = {"plda": KaldiChain(lda_dim=lda_dim).fit(train_emb, labels)}
    if (exp / "train_aug.npz").is_file():  # the same chain on the clean and the corrupted copies
        _, aug_emb, aug_labels = load_labelled_embeddings([(exp / "train_aug.npz", data / "train_aug" / "utt2spk")])
        backends["plda_aug"] = KaldiChain(lda_dim=lda_dim).fit(np.concatenate([train_emb, aug_emb]),
                                                              np.concatenate([labels, aug_labels]))
    # AS-norm against the training utterances (a small corpus has few speakers to average).
    norm = ScoreNorm(top_k=min(100, len(train_ids)), cohort="utterances").fit(train_emb, labels, mean=mean)
    out = {"lda_dim": int(backends["plda"].transform(train_emb[:1]).shape[1]), "results": {}}
    for cond, (folder, trials_name) in CONDITIONS.items():
        folder = folder.format(split=args.split)
        if cond in OPTIONAL and not ((data / folder / trials_name).is_file() and (exp / f"{folder}.npz").is_file()):
            continue  # no such copy, or a peer's embeddings (--embeddings-only) without it
        ids, emb = load_embeddings(exp / f"{folder}.npz")
        trials = read_trials(data / folder / trials_name)
        y = trial_labels(trials)
        cos = score_trials(ids, emb, trials, mean=mean)
        scored = {"cosine": cos, "asnorm": norm(cos, ids, emb, trials),
                  **{name: b.score(ids, emb, trials) for name, b in backends.items()}}
        for backend, scores in scored.items():
            m = verification_metrics(scores, y, p_targets=(0.01,))
            out["results"][f"{backend}/{cond}"] = {"eer": float(m["eer"]), "min_dcf_0.01": float(m["min_dcf_0.01"]),
                                                   "trials": len(trials)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="robust corpus (make_robust_corpus layout)")
    p.add_argument("--split", choices=("dev", "test"), required=True)
    p.add_argument("--exp", required=True, help="where embeddings and <split>.json go")
    p.add_argument("--name", default=None, help="system name stored in the json")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="xvector checkpoint or model directory")
    src.add_argument("--baseline", choices=("mfcc",), help="a no-training baseline")
    src.add_argument("--embeddings-only", action="store_true", help="score <exp>/*.npz written by another tool")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    Path(args.exp).mkdir(parents=True, exist_ok=True)
    aug = ["train_aug"] if (Path(args.data) / "train_aug" / "wav.scp").is_file() else []
    channel = [f"{args.split}_channel"] if (Path(args.data) / f"{args.split}_channel" / "wav.scp").is_file() else []
    dirs = ["train", *aug, args.split, f"{args.split}_noisy", *channel]
    times = embed(args, dirs, optional=("train_aug", *channel))
    result = {"name": args.name or Path(args.exp).name, "split": args.split, "embed_seconds": times, **score(args)}
    atomic_write_text(Path(args.exp) / f"{args.split}.json", json.dumps(result, indent=2) + "\n")
    for key, m in result["results"].items():
        log.info("%-18s EER %6.2f %%  minDCF(0.01) %.4f  (%d trials)", key, 100 * m["eer"], m["min_dcf_0.01"], m["trials"])


if __name__ == "__main__":
    main()
