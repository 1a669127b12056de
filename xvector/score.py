"""``xvector-score``: score a trial list (cosine or LDA + PLDA) and report EER / minDCF.

    xvector-score embeddings=exp/x/test.npz trials=data/test/trials output_dir=exp/x/score \
        [mean_embeddings=exp/x/train.npz]
    xvector-score backend=plda train_embeddings=exp/x/train.npz train_utt2spk=data/train/utt2spk \
        embeddings=exp/x/test.npz trials=data/test/trials output_dir=exp/x/score_plda

The back end comes from the ``backend`` config group via ``_target_``: a callable
``(ids, embeddings, trials, mean=None) -> scores``; one with a ``fit(x, labels)`` method is
first trained on ``train_embeddings`` labelled by ``train_utt2spk``.

Writes ``<output_dir>/scores`` (``<enroll> <test> <score> target|nontarget`` per trial, in
trial order) and ``<output_dir>/metrics.json``, both atomically, and prints one summary line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from xvector import CONFIG_DIR
from xvector.atomic import atomic_write_text
from xvector.data.lists import read_kaldi_map, read_trials
from xvector.embeddings import load_embeddings
from xvector.metrics import verification_metrics
from xvector.scoring.cosine import trial_labels

log = logging.getLogger(__name__)


def load_training(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` training embeddings and their ``(N,)`` speaker labels for a trained backend.

    Raises:
        ValueError: when ``train_embeddings`` or ``train_utt2spk`` is unset, or naming the
            utt2spk file and the utterance when a training id has no speaker.
    """
    target = cfg.backend.get("_target_", "?")
    if cfg.train_embeddings is None or cfg.train_utt2spk is None:
        raise ValueError(
            f"backend {target} is trained on labelled embeddings: set "
            "train_embeddings=<.npz> and train_utt2spk=<utt2spk file>"
        )
    ids, emb = load_embeddings(cfg.train_embeddings)
    utt2spk = read_kaldi_map(cfg.train_utt2spk)
    missing = [utt for utt in ids if utt not in utt2spk]
    if missing:
        raise ValueError(
            f"{cfg.train_utt2spk}: no speaker for training utterance {missing[0]!r} "
            f"({len(missing)} of {len(ids)} ids in {cfg.train_embeddings} have none)"
        )
    return emb, np.array([utt2spk[utt] for utt in ids])


def score_embeddings(cfg: DictConfig) -> dict[str, float]:
    """Score ``cfg.trials`` against ``cfg.embeddings``, write scores and metrics, return metrics.

    Raises:
        ValueError: naming the trials file (and line) for a trial without an embedding, or
            the offending file for unreadable inputs.
    """
    backend = instantiate(cfg.backend)
    if hasattr(backend, "fit"):  # a trained back end (LDA + PLDA): fit before reading trials
        if cfg.mean_embeddings is not None:  # refuse before fitting, not after
            raise ValueError(
                "mean_embeddings applies to cosine scoring; the PLDA back end subtracts the "
                "mean of its training embeddings itself"
            )
        train_emb, train_labels = load_training(cfg)
        try:
            backend.fit(train_emb, train_labels)
        except ValueError as err:
            raise ValueError(f"{cfg.train_embeddings}: {err}") from err
    ids, emb = load_embeddings(cfg.embeddings)
    mean = None
    if cfg.mean_embeddings is not None:
        _, mean_table = load_embeddings(cfg.mean_embeddings)
        if mean_table.shape[0] == 0:
            raise ValueError(f"{cfg.mean_embeddings}: no embeddings to take the mean of")
        mean = mean_table.mean(axis=0, dtype=np.float64)  # (D,)
        if mean.shape != (emb.shape[1],):
            raise ValueError(
                f"{cfg.mean_embeddings}: embedding dim {mean.shape[0]} differs from "
                f"{emb.shape[1]} in {cfg.embeddings}"
            )
    trials = read_trials(cfg.trials)
    try:
        scores = backend(ids, emb, trials, mean=mean)
        labels = trial_labels(trials)
        metrics = verification_metrics(scores, labels, p_targets=tuple(cfg.p_targets))
    except ValueError as err:
        raise ValueError(f"{cfg.trials}: {err} (embeddings: {cfg.embeddings})") from err

    out = Path(cfg.output_dir)
    lines = (
        f"{t.enroll} {t.test} {s:.6f} {'target' if t.target else 'nontarget'}\n"
        for t, s in zip(trials, scores.tolist())
    )
    atomic_write_text(out / "scores", "".join(lines))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    log.debug("wrote %s and %s", out / "scores", out / "metrics.json")
    return metrics


def summary_line(metrics: dict[str, float], p_target: float | None = None) -> str:
    """``EER 3.21%  minDCF(0.01) 0.3120  trials 8000`` (minDCF omitted when not computed)."""
    parts = [f"EER {100 * metrics['eer']:.2f}%"]
    if p_target is not None:
        parts.append(f"minDCF({p_target:g}) {metrics[f'min_dcf_{p_target:g}']:.4f}")
    parts.append(f"trials {metrics['num_trials']}")
    return "  ".join(parts)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="score")
def main(cfg: DictConfig) -> None:
    metrics = score_embeddings(cfg)
    print(summary_line(metrics, cfg.p_targets[0] if cfg.p_targets else None))


if __name__ == "__main__":
    main()
