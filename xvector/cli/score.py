"""``xvector-score``: score a trial list and report EER, minDCF, Cllr and an operating point.

    xvector-score embeddings=exp/x/test.npz trials=data/test/trials output_dir=exp/x/score \
        [mean_embeddings=exp/x/train.npz]
    xvector-score backend=plda train_embeddings=exp/x/train.npz train_utt2spk=data/train/utt2spk \
        embeddings=exp/x/test.npz trials=data/test/trials output_dir=exp/x/score_plda

Config groups, each an object from ``_target_``:

- ``backend``: a callable ``(ids, embeddings, trials, mean=None) -> scores``; one with a
  ``fit(x, labels)`` method is first trained on ``train_embeddings`` labelled by
  ``train_utt2spk`` (each a path or a list of paths, paired in order: e.g. the training
  embeddings and those of their corrupted copies, ``scripts/augment_data_dir.py``);
- ``norm``: s-norm / AS-norm of cosine scores, the cohort built from the same training data;
- ``calibration``: a score → LLR map fitted on ``dev_embeddings`` + ``dev_trials``.

The ``threshold`` block picks an operating point (at the EER, a target FAR, or minDCF) on the
development list when there is one (else on the evaluation list) and reports its FAR/FRR on the
evaluation trials. Writes ``<output_dir>/scores`` (``<enroll> <test> <score> target|nontarget``
per trial, in trial order), ``metrics.json``, ``threshold.json``, ``det.png`` and, when
calibrated, ``calibration.json``, each atomically, and prints one summary line.

Speaker-model trials (``<model> <test utt> target|nontarget``, CN-Celeb, SITW): with
``enroll_map=<model> <utt1> <utt2> ...`` each model is the mean of its utterances' normalised
embeddings in the back end's space (``enroll_mode=avg``; PLDA scores it as ``n`` enrolment
utterances), or the embedding of its concatenated audio stored under the model's id in
``enroll_embeddings`` (``enroll_mode=concat``). ``metrics.json`` also holds NIST SRE's
``min_c_primary`` (and ``act_c_primary`` for LLRs) and VoxSRC's ``min_dcf_0.05``.

``threshold.json`` and ``calibration.json`` carry a ``scored_with`` block (back end, norm, mean
and its SHA-256), which ``xvector-export`` checks against the mean it stores. Embedding files
with NaN/inf rows are refused, naming the file and utterance; errors are one line
(``XVECTOR_DEBUG=1``: the traceback).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import hydra
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from xvector import CONFIG_DIR
from xvector.atomic import atomic_write_text
from xvector.cli import help as _help  # noqa: F401 - registers the --help resolvers
from xvector.cli.errors import one_line_errors
from xvector.data.enrollment import check_model_trials, read_enroll_map
from xvector.data.lists import read_trials
from xvector.embeddings import embedding_mean, load_embeddings, load_labelled_embeddings, mean_fingerprint
from xvector.metrics import (
    c_primary,
    choose_threshold,
    compute_min_cllr,
    compute_min_dcf,
    llr_metrics,
    rates_at_threshold,
    verification_metrics,
)
from xvector.scoring.backends import CosineBackend, PLDABackend
from xvector.scoring.cosine import trial_labels
from xvector.scoring.det import plot_det
from xvector.scoring.store import SpeakerStore

log = logging.getLogger(__name__)


def _as_paths(value: str | Sequence[str] | None) -> list[str]:
    """A path or a list of them (``train_embeddings=[a.npz,b.npz]``) as a list."""
    if value is None:
        return []
    return [str(value)] if isinstance(value, (str, os.PathLike)) else [str(v) for v in value]


def load_training(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` training embeddings and their ``(N,)`` speaker labels for a trained backend.

    ``train_embeddings`` and ``train_utt2spk`` are each a path or a list of paths, paired in
    order: e.g. the clean training embeddings and those of their augmented copies
    (``scripts/augment_data_dir.py``), concatenated.

    Raises:
        ValueError: when ``train_embeddings`` or ``train_utt2spk`` is unset or the two lists
            differ in length, or naming the utt2spk file and the utterance when a training id
            has no speaker.
    """
    target = cfg.backend.get("_target_", "?")
    emb_paths, spk_paths = _as_paths(cfg.train_embeddings), _as_paths(cfg.train_utt2spk)
    if not emb_paths or not spk_paths:
        raise ValueError(
            f"backend {target} is trained on labelled embeddings: set "
            "train_embeddings=<.npz> and train_utt2spk=<utt2spk file>"
        )
    if len(emb_paths) != len(spk_paths):
        raise ValueError(f"train_embeddings names {len(emb_paths)} files and train_utt2spk {len(spk_paths)}: "
                         "give one utt2spk per embedding file, in the same order")
    _, emb, labels = load_labelled_embeddings(list(zip(emb_paths, spk_paths)))
    return emb, labels


def _mean(path: str | None) -> np.ndarray | None:
    """``(D,)`` mean of the embeddings in ``path``, or ``None`` when unset."""
    if path is None:
        return None
    return embedding_mean(path)  # (D,), the function xvector-export stores the mean with


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

    def store_backend(self, dim: int) -> CosineBackend | PLDABackend:
        """The configured back end in the form that scores speaker models (numpy arrays)."""
        if hasattr(self.backend, "fit"):
            return PLDABackend.from_chain(self.backend)
        return CosineBackend(self.mean, in_dim=dim)

    def score_models(self, embeddings: str, trials_path: str, enroll_map: str, mode: str = "avg",
                     enroll_embeddings: str | None = None) -> tuple[list, np.ndarray, np.ndarray]:
        """``(trials, scores (T,), labels (T,))`` of a trial list whose enrolment side names the
        speaker models of ``enroll_map``; test utterances come from ``embeddings``, the
        enrolment side from ``enroll_embeddings`` (default: the same file).

        Raises:
            ValueError: naming the trials file and line for a model not in the map or a test
                utterance without an embedding, or the map and model for a missing utterance.
        """
        ids, emb = load_embeddings(embeddings)
        self._check_dim(emb, embeddings)
        enroll_ids, enroll_emb = (ids, emb) if enroll_embeddings in (None, embeddings) else load_embeddings(enroll_embeddings)
        trials = read_trials(trials_path)
        models = read_enroll_map(enroll_map)
        check_model_trials(trials, models, trials_path)
        needed = {t.enroll for t in trials}
        try:
            store = SpeakerStore(self.store_backend(emb.shape[1]), mode)
            store.add_map({m: u for m, u in models.items() if m in needed}, enroll_ids, enroll_emb,
                          map_name=str(enroll_map))
            scores = store.score_trials(trials, ids, emb)
            if self.norm is not None:  # cohort statistics of each model's direction, as of an utterance's
                directions = store.speaker_features() + (0.0 if self.mean is None else self.mean)
                scores = self.norm(scores, store.ids + list(ids), np.vstack([directions, emb]), trials)
            labels = trial_labels(trials)
        except ValueError as err:
            raise ValueError(f"{trials_path}: {err} (embeddings: {embeddings})") from err
        return trials, scores, labels


def _score_list(scorer: Scorer, cfg: DictConfig, embeddings: str, trials: str, prefix: str = "") -> tuple:
    """Utterance trials, or speaker-model trials when ``<prefix>enroll_map`` is set."""
    enroll_map = cfg.get(f"{prefix}enroll_map")
    if enroll_map is None:
        return scorer(embeddings, trials)
    return scorer.score_models(embeddings, trials, enroll_map, cfg.get("enroll_mode", "avg"),
                               cfg.get(f"{prefix}enroll_embeddings"))


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
    trials, scores, labels = _score_list(scorer, cfg, cfg.embeddings, cfg.trials)
    dev = None
    if cfg.dev_embeddings is not None or cfg.dev_trials is not None:
        if cfg.dev_embeddings is None or cfg.dev_trials is None:
            raise ValueError("set both dev_embeddings and dev_trials (or neither)")
        _, dev_scores, dev_labels = _score_list(scorer, cfg, cfg.dev_embeddings, cfg.dev_trials, "dev_")
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

    p_targets = check_p_targets(cfg.p_targets)
    try:
        metrics: dict = verification_metrics(scores, labels, p_targets=p_targets)
        metrics["min_cllr"] = compute_min_cllr(scores, labels)
        metrics.setdefault("min_dcf_0.05", compute_min_dcf(scores, labels, 0.05)[0])  # VoxSRC's primary metric
        metrics.update(c_primary(scores, labels, is_llr))  # NIST SRE's
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
    made = {"scored_with": scored_with(cfg, scorer.mean)}  # what xvector-export checks the mean against
    if calibration is not None:
        atomic_write_text(out / "calibration.json", json.dumps({**calibration.to_dict(), **made}, indent=2) + "\n")
    atomic_write_text(out / "threshold.json", json.dumps({**decision, **made}, indent=2) + "\n")
    if cfg.det_plot:
        plot_det(out / "det.png", {Path(cfg.embeddings).stem: (scores, labels)}, p_target=p_targets[0] if p_targets else 0.01)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    log.debug("wrote scores, metrics.json and threshold.json to %s", out)
    return metrics


def check_p_targets(value) -> tuple[float, ...]:
    """``p_targets`` as a tuple of priors in (0, 1); one number is taken as a list of one.

    Raises:
        ValueError: naming the value when an entry is not a number in (0, 1).
    """
    values = [value] if isinstance(value, (int, float, str)) else list(value)
    try:
        out = tuple(float(p) for p in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"p_targets={value!r}: need numbers in (0, 1), e.g. p_targets=[0.01,0.05]") from err
    if not all(0.0 < p < 1.0 for p in out):
        raise ValueError(f"p_targets={value!r}: every prior must lie in (0, 1)")
    return out


def scored_with(cfg: DictConfig, mean: np.ndarray | None) -> dict:
    """What produced the scores: back end and norm targets, mean file and the SHA-256 of its mean.

    ``xvector-export --score-dir`` refuses a threshold or calibration whose scores another mean
    (or back end) produced than the model directory it writes applies.
    """
    norm = cfg.norm.get("_target_") if cfg.norm else None
    return {"backend": cfg.backend.get("_target_"), "norm": norm,
            "mean_embeddings": None if cfg.mean_embeddings is None else str(cfg.mean_embeddings),
            "mean_sha256": mean_fingerprint(mean)}


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
    with one_line_errors("xvector-score"):
        metrics = score_embeddings(cfg)
        p_targets = check_p_targets(cfg.p_targets)
    print(summary_line(metrics, p_targets[0] if p_targets else None))


if __name__ == "__main__":
    main()
