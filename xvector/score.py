"""``xvector-score``: cosine-score a trial list and report EER / minDCF.

    xvector-score embeddings=exp/x/test.npz trials=data/test/trials output_dir=exp/x/score \
        [mean_embeddings=exp/x/train.npz]

Writes ``<output_dir>/scores`` (``<enroll> <test> <score> target|nontarget`` per trial, in
trial order) and ``<output_dir>/metrics.json``, both atomically, and prints one summary line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from xvector import CONFIG_DIR
from xvector.atomic import atomic_write_text
from xvector.data.lists import read_trials
from xvector.embeddings import load_embeddings
from xvector.metrics import verification_metrics
from xvector.scoring.cosine import score_trials, trial_labels

log = logging.getLogger(__name__)


def score_embeddings(cfg: DictConfig) -> dict[str, float]:
    """Score ``cfg.trials`` against ``cfg.embeddings``, write scores and metrics, return metrics.

    Raises:
        ValueError: naming the trials file (and line) for a trial without an embedding, or
            the offending file for unreadable inputs.
    """
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
        scores = score_trials(ids, emb, trials, mean=mean)
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
