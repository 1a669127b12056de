"""Self-contained model directories: everything needed to embed, score and decide.

A model directory is what ``xvector-export`` writes from a training checkpoint and what
``xvector.load_model``, ``xvector-verify``, ``xvector-extract`` and ``scripts/onnx_verify.py``
read. Its files::

    config.yaml           the resolved training config (front-end, net, sample rate): the net is
                          rebuilt from it, as from a checkpoint
    embedder.pt           state_dict of the front-end + net (torch.load(weights_only=True)-safe)
    info.json             format version, sample rate, embedding size, shortest input, file list
    mean.npy              optional (D,) float32 mean of training embeddings, subtracted before
                          cosine scoring
    calibration.json      optional {"scale": a, "offset": b}: LLR = a * score + b
    threshold.json        optional {"criterion": .., "threshold": t, "on": "llr"|"score", ...}
    embedder.onnx         optional (xvector-export --format onnx): wav (B, S), wav_lens (B,) →
                          embedding (B, D), the Fbank front-end inside the graph
    embedder.torchscript.pt  optional (--format torchscript), same signature

The directory is built under a temporary name beside its destination and renamed into place,
so a crash never leaves a half-written model under the final name.

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> ckpt = init_checkpoint(d + "/tiny.ckpt", tiny_config())
    >>> out = write_model_dir(d + "/model", ckpt, calibration={"scale": 12.0, "offset": -4.0})
    >>> sorted(p.name for p in out.iterdir())
    ['calibration.json', 'config.yaml', 'embedder.pt', 'info.json']
    >>> model = load_model_dir(out)
    >>> model.sample_rate, model.embed_dim, model.calibration
    (16000, 16, {'scale': 12.0, 'offset': -4.0})
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from xvector import __version__
from xvector.embeddings import load_embeddings
from xvector.inference.embed import min_samples, sample_rate_of
from xvector.inference.embedder import Embedder, upgrade_targets
from xvector.inference.graph import export_embedder

# Neither a model directory nor a training checkpoint needs Lightning (~5 s to import, ~260 MB
# of RSS) to load: xvector.inference.embedder.load_embedder reads checkpoints with torch alone.

FORMAT_VERSION = 1
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "embedder.pt"
INFO_FILE = "info.json"
MEAN_FILE = "mean.npy"
CALIBRATION_FILE = "calibration.json"
THRESHOLD_FILE = "threshold.json"
ONNX_FILE = "embedder.onnx"
TORCHSCRIPT_FILE = "embedder.torchscript.pt"
FORMATS = {"onnx": ONNX_FILE, "torchscript": TORCHSCRIPT_FILE}


@dataclass
class ModelDir:
    """A loaded model directory (or checkpoint): the embedder and its scoring files.

    Attributes:
        embedder: front-end + net, in eval mode.
        config: the resolved training config.
        mean: ``(D,)`` training-embedding mean, or None.
        calibration: ``{"scale", "offset"}`` or None.
        threshold: the ``threshold.json`` dict or None.
        path: where it was loaded from.
    """

    embedder: Embedder
    config: DictConfig
    mean: np.ndarray | None
    calibration: dict[str, float] | None
    threshold: dict[str, Any] | None
    path: Path

    @property
    def sample_rate(self) -> int:
        return sample_rate_of(self.embedder)

    @property
    def embed_dim(self) -> int:
        return int(self.embedder.net.embed_dim)


def tiny_config(num_mel_bins: int = 24, embed_dim: int = 16) -> dict:
    """A run config with a tiny x-vector (for examples, tests and smoke runs, not for use)."""
    return {
        "data": {"sample_rate": 16000},
        "features": {"_target_": "xvector.features.fbank.Fbank", "num_mel_bins": num_mel_bins,
                     "sample_rate": 16000, "cmn": "utterance", "dither": 1.0},
        "model": {"_target_": "xvector.nets.tdnn.XVector", "_partial_": True,
                  "channels": [32, 32, 32, 32, 64], "embed_dim": embed_dim, "segment_dims": [embed_dim]},
    }


def build_embedder(config: DictConfig | Mapping) -> Embedder:
    """Instantiate the (untrained) front-end and net a run config describes."""
    cfg = config if isinstance(config, DictConfig) else OmegaConf.create(dict(config))
    features = instantiate(cfg.features)
    return Embedder(features, instantiate(cfg.model)(in_channels=features.out_dim))


def init_checkpoint(path: str | os.PathLike, config: Mapping, seed: int = 0) -> Path:
    """Write a checkpoint of an *untrained* embedder in the training layout (randomly initialised).

    For examples, tests and benchmarks that need a loadable model without training one.
    """
    from xvector.inference.embedder import CONFIG_KEY

    torch.manual_seed(seed)
    embedder = build_embedder(config).eval()
    state = {f"embedder.{k}": v for k, v in embedder.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)
    torch.save({"state_dict": state, CONFIG_KEY: config}, path)
    return path


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read {what} ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: {what} must be a JSON object")
    return data


def check_calibration(cal: Mapping, source: str = "calibration") -> dict[str, float]:
    """Validate ``{"scale": a, "offset": b}`` (finite numbers, a > 0) and return it as floats."""
    try:
        out = {"scale": float(cal["scale"]), "offset": float(cal["offset"])}
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: need numeric 'scale' and 'offset' ({err})") from err
    if not all(map(math.isfinite, out.values())) or out["scale"] <= 0:
        raise ValueError(f"{source}: scale must be finite and > 0 and offset finite, got {out}")
    return out


def check_threshold(thr: Mapping, calibrated: bool, source: str = "threshold") -> dict[str, Any]:
    """Validate a ``threshold.json`` dict: a finite ``threshold`` on ``"score"`` or ``"llr"``."""
    out = dict(thr)
    try:
        out["threshold"] = float(out["threshold"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: need a numeric 'threshold' ({err})") from err
    out.setdefault("on", "score")
    if out["on"] not in ("score", "llr") or not math.isfinite(out["threshold"]):
        raise ValueError(f"{source}: 'on' must be 'score' or 'llr' and the threshold finite, got {thr}")
    if out["on"] == "llr" and not calibrated:
        raise ValueError(f"{source}: threshold is on LLRs but no calibration was given")
    return out


def _as_dict(value: Mapping | str | os.PathLike, what: str) -> tuple[dict, str]:
    if isinstance(value, Mapping):
        return dict(value), what
    return _read_json(Path(value), what), str(value)


def write_model_dir(
    out: str | os.PathLike,
    ckpt_path: str | os.PathLike,
    mean_embeddings: str | os.PathLike | None = None,
    calibration: Mapping | str | os.PathLike | None = None,
    threshold: Mapping | str | os.PathLike | None = None,
    formats: Sequence[str] = (),
    overwrite: bool = False,
    info_extra: Mapping[str, Any] | None = None,
) -> Path:
    """Assemble a model directory from a training checkpoint, atomically.

    Args:
        out: destination folder.
        ckpt_path: training checkpoint (net rebuilt from its stored config).
        mean_embeddings: optional ``.npz`` of training embeddings whose mean is stored.
        calibration: optional ``calibration.json`` path (from ``xvector-score``) or dict.
        threshold: optional ``threshold.json`` path or dict.
        formats: exported graphs to add: ``"onnx"``, ``"torchscript"``.
        overwrite: replace an existing ``out``.
        info_extra: entries added to (or replacing those of) ``info.json``, e.g. where an
            imported model came from (:mod:`xvector.importers`).

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: naming the file for a bad checkpoint, embeddings of the wrong size, a
            malformed calibration/threshold, an unknown format, or an existing ``out``.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: already exists (pass overwrite to replace it)")
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {sorted(FORMATS)}")
    from xvector.inference.embedder import load_embedder

    embedder, cfg = load_embedder(ckpt_path)
    embed_dim = int(embedder.net.embed_dim)
    cal = thr = None
    if calibration is not None:
        raw, src = _as_dict(calibration, "calibration")
        cal = check_calibration(raw, src)
    if threshold is not None:
        raw, src = _as_dict(threshold, "threshold")
        thr = check_threshold(raw, cal is not None, src)
    mean = None
    if mean_embeddings is not None:
        _, emb = load_embeddings(mean_embeddings)
        if emb.ndim != 2 or emb.shape[1] != embed_dim or len(emb) == 0:
            raise ValueError(f"{mean_embeddings}: embeddings of shape {emb.shape}, the model's are {embed_dim}-dim")
        mean = emb.astype(np.float64).mean(0).astype(np.float32)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        OmegaConf.save(cfg, tmp / CONFIG_FILE)
        torch.save(embedder.state_dict(), tmp / WEIGHTS_FILE)
        files = [CONFIG_FILE, WEIGHTS_FILE]
        if mean is not None:
            np.save(tmp / MEAN_FILE, mean)
            files.append(MEAN_FILE)
        if cal is not None:
            (tmp / CALIBRATION_FILE).write_text(json.dumps(cal, indent=2) + "\n", encoding="utf-8")
            files.append(CALIBRATION_FILE)
        if thr is not None:
            (tmp / THRESHOLD_FILE).write_text(json.dumps(thr, indent=2) + "\n", encoding="utf-8")
            files.append(THRESHOLD_FILE)
        if formats:
            for fmt in formats:
                export_embedder(embedder, tmp / FORMATS[fmt], fmt)
                files.append(FORMATS[fmt])
        info = {
            "format_version": FORMAT_VERSION, "xvector_version": __version__,
            "source_checkpoint": str(Path(ckpt_path).resolve()), "sample_rate": sample_rate_of(embedder),
            "embed_dim": embed_dim, "min_samples": min_samples(embedder), "files": sorted(files),
            "onnx_inputs": {"wav": "float32 (B, S) in [-1, 1]", "wav_lens": "int64 (B,) samples"},
            "onnx_outputs": {"embedding": "float32 (B, D), before mean subtraction"},
        }
        info.update(info_extra or {})
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_model_dir(path: str | os.PathLike, map_location: str = "cpu") -> ModelDir:
    """Load a model directory, or a bare training checkpoint (no mean, calibration, threshold).

    Raises:
        ValueError: naming the path when it is neither, or a file in it is missing or malformed.
    """
    path = Path(path)
    if path.is_file():
        from xvector.inference.embedder import load_embedder

        embedder, cfg = load_embedder(path, map_location)
        return ModelDir(embedder, cfg, None, None, None, path)
    if not path.is_dir():
        raise ValueError(f"{path}: no model directory or checkpoint there")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            raise ValueError(f"{path}: not a model directory (no {name}; make one with xvector-export)")
    cfg = OmegaConf.create(upgrade_targets(OmegaConf.to_container(OmegaConf.load(path / CONFIG_FILE))))
    embedder = build_embedder(cfg)
    try:
        state = torch.load(path / WEIGHTS_FILE, map_location=map_location, weights_only=True)
        embedder.load_state_dict(state)
    except Exception as err:  # torch raises many types for corrupt or mismatched files
        raise ValueError(f"{path / WEIGHTS_FILE}: cannot load weights into the net of {CONFIG_FILE} ({err})") from err
    embedder.eval()
    mean = None
    if (path / MEAN_FILE).is_file():
        mean = np.load(path / MEAN_FILE).astype(np.float32)
        if mean.shape != (int(embedder.net.embed_dim),):
            raise ValueError(f"{path / MEAN_FILE}: shape {mean.shape}, expected ({embedder.net.embed_dim},)")
    cal = thr = None
    if (path / CALIBRATION_FILE).is_file():
        cal = check_calibration(_read_json(path / CALIBRATION_FILE, "calibration"), str(path / CALIBRATION_FILE))
    if (path / THRESHOLD_FILE).is_file():
        thr = check_threshold(_read_json(path / THRESHOLD_FILE, "threshold"), cal is not None, str(path / THRESHOLD_FILE))
    return ModelDir(embedder, cfg, mean, cal, thr, path)
