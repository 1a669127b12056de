"""``xvector-score``: score a trial list and report EER, minDCF, Cllr and an operating point.

    xvector-score embeddings=exp/x/test.npz trials=data/test/trials output_dir=exp/x/score \
        [mean_embeddings=exp/x/train.npz]
    xvector-score backend=plda train_embeddings=exp/x/train.npz train_utt2spk=data/train/utt2spk \
        embeddings=exp/x/test.npz trials=data/test/trials output_dir=exp/x/score_plda

Config groups, each an object from ``_target_``:

- ``backend``: a callable ``(ids, embeddings, trials, mean=None) -> scores``; one with a
  ``fit(x, labels)`` method is first trained on ``train_embeddings`` labelled by
  ``train_utt2spk``;
- ``norm``: s-norm / AS-norm of cosine scores, the cohort built from the same training data;
- ``calibration``: a score → LLR map fitted on ``dev_embeddings`` + ``dev_trials``.

The ``threshold`` block picks an operating point (at the EER, a target FAR, or minDCF) on the
development list when there is one (else on the evaluation list) and reports its FAR/FRR on the
evaluation trials. Writes ``<output_dir>/scores`` (``<enroll> <test> <score> target|nontarget``
per trial, in trial order), ``metrics.json``, ``threshold.json``, ``det.png`` and, when
calibrated, ``calibration.json``, each atomically, and prints one summary line.
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
from xvector.metrics import (
    choose_threshold,
    compute_min_cllr,
    llr_metrics,
    rates_at_threshold,
    verification_metrics,
)
from xvector.scoring.cosine import trial_labels
from xvector.scoring.det import plot_det

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


def _mean(path: str | None) -> np.ndarray | None:
    """``(D,)`` mean of the embeddings in ``path``, or ``None`` when unset."""
    if path is None:
        return None
    _, table = load_embeddings(path)
    if table.shape[0] == 0:
        raise ValueError(f"{path}: no embeddings to take the mean of")
    return table.mean(axis=0, dtype=np.float64)  # (D,)


class Scorer:
    """The configured chain: back end (fitted if trained) → optional s-/AS-norm.

    Built once, then applied to the development and the evaluation lists alike.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.backend = instantiate(cfg.backend)
        self.norm = instantiate(cfg.norm) if cfg.norm else None
        trained = hasattr(self.backend, "fit")
        if trained and cfg.mean_embeddings is not None:  # refuse before fitting, not after
            raise ValueError(
                "mean_embeddings applies to cosine scoring; the PLDA back end subtracts the "
                "mean of its training embeddings itself"
            )
        if trained and self.norm is not None:
            raise ValueError("norm=snorm|asnorm normalises cosine scores; use it with backend=cosine")
        # PLDA scores are log-likelihood ratios by construction (if not calibrated ones).
        self.outputs_llr = bool(getattr(self.backend, "outputs_llr", False))
        self.mean_path = cfg.mean_embeddings
        self.mean = _mean(cfg.mean_embeddings)
        if trained or self.norm is not None:
            train_emb, train_labels = load_training(cfg)
            self._check_dim(train_emb, cfg.train_embeddings)
            try:
                if trained:
                    self.backend.fit(train_emb, train_labels)
                else:
                    self.norm.fit(train_emb, train_labels, mean=self.mean)
            except ValueError as err:
                raise ValueError(f"{cfg.train_embeddings}: {err}") from err

    def _check_dim(self, emb: np.ndarray, path: str) -> None:
        if self.mean is not None and self.mean.shape != (emb.shape[1],):
            raise ValueError(
                f"{self.mean_path}: embedding dim {self.mean.shape[0]} differs from {emb.shape[1]} in {path}"
            )

    def __call__(self, embeddings: str, trials_path: str) -> tuple[list, np.ndarray, np.ndarray]:
        """``(trials, scores (T,), labels (T,))`` of one trial list against one embedding file.

        Raises:
            ValueError: naming the trials file (and line) for a trial without an embedding.
        """
        ids, emb = load_embeddings(embeddings)
        self._check_dim(emb, embeddings)
        trials = read_trials(trials_path)
        try:
            scores = self.backend(ids, emb, trials, mean=self.mean)
            if self.norm is not None:
                scores = self.norm(scores, ids, emb, trials)
            labels = trial_labels(trials)
        except ValueError as err:
            raise ValueError(f"{trials_path}: {err} (embeddings: {embeddings})") from err
        return trials, scores, labels


def score_embeddings(cfg: DictConfig) -> dict:
    """Score ``cfg.trials`` against ``cfg.embeddings``; write scores, metrics and the decision.

    Writes to ``cfg.output_dir`` (each file atomically): ``scores`` (LLRs when calibrated),
    ``metrics.json``, ``threshold.json``, ``det.png`` and, when calibrated,
    ``calibration.json``.

    Returns:
        The metrics: EER and minDCF at each ``p_targets`` (with thresholds), trial counts,
        ``min_cllr``; ``cllr`` and ``act_dcf_<p>`` when the scores are LLRs (calibrated, or
        the PLDA back end); ``decision``: the chosen threshold and its FAR/FRR on these trials.

    Raises:
        ValueError: naming the file (and trial line) for bad or inconsistent inputs.
    """
    scorer = Scorer(cfg)
    trials, scores, labels = scorer(cfg.embeddings, cfg.trials)
    dev = None
    if cfg.dev_embeddings is not None or cfg.dev_trials is not None:
        if cfg.dev_embeddings is None or cfg.dev_trials is None:
            raise ValueError("set both dev_embeddings and dev_trials (or neither)")
        _, dev_scores, dev_labels = scorer(cfg.dev_embeddings, cfg.dev_trials)
        dev = (dev_scores, dev_labels)
    calibration = instantiate(cfg.calibration) if cfg.calibration else None
    if calibration is not None:
        if dev is None:
            raise ValueError("calibration is fitted on a development list: set dev_embeddings and dev_trials")
        try:
            calibration.fit(*dev)
        except ValueError as err:
            raise ValueError(f"{cfg.dev_trials}: {err}") from err
        scores, dev = calibration(scores), (calibration(dev[0]), dev[1])
    is_llr = calibration is not None or scorer.outputs_llr

    p_targets = tuple(cfg.p_targets)
    try:
        metrics: dict = verification_metrics(scores, labels, p_targets=p_targets)
        metrics["min_cllr"] = compute_min_cllr(scores, labels)
        if is_llr:
            metrics.update(llr_metrics(scores, labels, p_targets))
            # PLDA scores are LLRs in form, not in scale: Cllr / actDCF mean little uncalibrated.
            metrics["calibrated"] = calibration is not None
        decision = choose_decision(cfg.threshold, *(dev if dev is not None else (scores, labels)))
    except ValueError as err:
        raise ValueError(f"{cfg.trials}: {err}") from err
    far, frr = rates_at_threshold(scores, labels, decision["threshold"])
    decision.update(on="llr" if is_llr else "score", chosen_on="dev" if dev is not None else "eval", far=far, frr=frr)
    metrics["decision"] = decision

    out = Path(cfg.output_dir)
    lines = (
        f"{t.enroll} {t.test} {s:.6f} {'target' if t.target else 'nontarget'}\n"
        for t, s in zip(trials, scores.tolist())
    )
    atomic_write_text(out / "scores", "".join(lines))
    if calibration is not None:
        atomic_write_text(out / "calibration.json", json.dumps(calibration.to_dict(), indent=2) + "\n")
    atomic_write_text(out / "threshold.json", json.dumps(decision, indent=2) + "\n")
    if cfg.det_plot:
        plot_det(out / "det.png", {Path(cfg.embeddings).stem: (scores, labels)}, p_target=p_targets[0] if p_targets else 0.01)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    log.debug("wrote scores, metrics.json and threshold.json to %s", out)
    return metrics


def choose_decision(spec: DictConfig, scores: np.ndarray, labels: np.ndarray) -> dict:
    """``{"criterion", "threshold", ...}`` from the ``threshold`` config on labelled scores."""
    criterion = spec.criterion
    threshold = choose_threshold(scores, labels, criterion, far=spec.far, p_target=spec.p_target)
    decision: dict = {"criterion": criterion, "threshold": threshold}
    if criterion == "far":
        decision["target_far"] = float(spec.far)
    elif criterion == "min_dcf":
        decision["p_target"] = float(spec.p_target)
    return decision


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
