"""Self-contained model directories: everything needed to embed, score and decide.

A model directory is what ``xvector-export`` writes from a training checkpoint and what
``xvector.load_model``, ``xvector-verify``, ``xvector-extract`` and ``scripts/onnx_verify.py``
read. Its files::

    config.yaml           the resolved training config (front-end, net, sample rate): the net is
                          rebuilt from it, as from a checkpoint
    embedder.pt           state_dict of the front-end + net (torch.load(weights_only=True)-safe)
    info.json             format marker and version, sample rate, embedding size, shortest input,
                          file list (``--overwrite`` replaces only a folder whose info.json says
                          it is a model directory and that holds nothing else, or an empty one)
    mean.npy              optional (D,) float32 mean of training embeddings, subtracted before
                          cosine scoring
    calibration.json      optional {"scale": a, "offset": b}: LLR = a * score + b
    threshold.json        optional {"criterion": .., "threshold": t, "on": "llr"|"score", ...}
                          calibration and threshold come from an ``xvector-score`` run whose
                          ``scored_with`` block must match this directory: cosine, no norm, and
                          the same mean (or none), else the operating point belongs to other scores
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
from xvector.embeddings import embedding_mean
from xvector.inference.embed import min_samples, sample_rate_of
from xvector.inference.embedder import Embedder, upgrade_targets
from xvector.inference.graph import export_embedder
from xvector.inference.operating_point import (  # noqa: F401 - check_* and the keys are public here too
    COSINE_BACKEND,
    SCORED_WITH,
    check_calibration,
    check_scored_with,
    check_threshold,
)

# Neither a model directory nor a training checkpoint needs Lightning (~5 s to import, ~260 MB
# of RSS) to load: xvector.inference.embedder.load_embedder reads checkpoints with torch alone.

FORMAT = "xvector-model-dir"  # info.json's marker: --overwrite replaces only such folders
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


def read_json_object(path: str | os.PathLike, what: str) -> dict:
    """The JSON object in ``path``; a ``ValueError`` naming the file (and ``what``) otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read {what} ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: {what} must be a JSON object")
    return data


def check_replaceable(out: Path, ckpt_path: str | os.PathLike) -> None:
    """Refuse to replace anything but an empty folder or a model directory this module wrote.

    ``--overwrite`` given the experiment folder instead of ``exp/model`` must not delete the
    checkpoint being read and everything beside it: a folder is replaced only when it is empty,
    or when its info.json carries the model-directory marker and it holds only the files that
    info.json lists; never when the input checkpoint lies inside it.

    Raises:
        ValueError: naming ``out`` and why it is not replaced.
    """
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder; not replacing it")
    ckpt = Path(ckpt_path).resolve()
    if ckpt.is_relative_to(out.resolve()):
        raise ValueError(f"{out}: holds the input checkpoint {ckpt_path}; not replacing it (export to e.g. {out / 'model'})")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    try:
        info = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    # Directories written before the marker existed carry format_version and the file list.
    ours = isinstance(info, dict) and (
        info.get("format") == FORMAT or ("format_version" in info and "xvector_version" in info)
    ) and isinstance(info.get("files"), list)
    if not ours:
        raise ValueError(
            f"{out}: not a model directory written by xvector-export (no {INFO_FILE} marking it); overwrite replaces "
            "only those or an empty folder, so nothing was touched: choose another output"
        )
    extra = [name for name in entries if name not in {*map(str, info["files"]), INFO_FILE}]
    if extra:
        shown = ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
        raise ValueError(f"{out}: holds {len(extra)} file(s) xvector-export did not write ({shown}); not replacing it")


def _as_dict(value: Mapping | str | os.PathLike, what: str) -> tuple[dict, str]:
    if isinstance(value, Mapping):
        return dict(value), what
    return read_json_object(value, what), str(value)


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
        overwrite: replace an existing ``out`` when it is an empty folder or a model directory
            (see :func:`check_replaceable`); anything else is refused.
        info_extra: entries added to (or replacing those of) ``info.json``, e.g. where an
            imported model came from (:mod:`xvector.importers`).

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: naming the file for a bad checkpoint, embeddings of the wrong size or with
            NaN/inf, a malformed calibration/threshold or one made on other scores (another
            mean, back end or norm: :func:`check_scored_with`), an unknown format, or an
            existing ``out`` (without ``overwrite``, or one it may not replace).
    """
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise ValueError(f"{out}: already exists (pass overwrite to replace it)")
    check_replaceable(out, ckpt_path)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {sorted(FORMATS)}")
    from xvector.inference.embedder import load_embedder

    embedder, cfg = load_embedder(ckpt_path)
    embed_dim = int(embedder.net.embed_dim)
    mean = None
    if mean_embeddings is not None:
        mean = embedding_mean(mean_embeddings).astype(np.float32)  # refuses NaN/inf rows, naming the utterance
        if mean.shape != (embed_dim,):
            raise ValueError(f"{mean_embeddings}: embeddings of dim {mean.shape[0]}, the model's are {embed_dim}-dim")
    mean_src = None if mean_embeddings is None else str(mean_embeddings)
    cal = thr = None
    if calibration is not None:
        raw, src = _as_dict(calibration, "calibration")
        cal = check_calibration(raw, src)
        check_scored_with(raw, src, mean, mean_src)
    if threshold is not None:
        raw, src = _as_dict(threshold, "threshold")
        thr = check_threshold(raw, cal is not None, src)
        check_scored_with(raw, src, mean, mean_src)

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
            "format": FORMAT, "format_version": FORMAT_VERSION, "xvector_version": __version__,
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
        try:
            mean = np.load(path / MEAN_FILE, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"{path / MEAN_FILE}: cannot read the mean ({err})") from err
        if mean.shape != (int(embedder.net.embed_dim),):
            raise ValueError(f"{path / MEAN_FILE}: shape {mean.shape}, expected ({embedder.net.embed_dim},)")
        if not np.isfinite(mean).all():  # a NaN mean turns every score into 0.0
            raise ValueError(f"{path / MEAN_FILE}: the mean holds NaN or infinite values")
    cal = thr = None
    if (path / CALIBRATION_FILE).is_file():
        cal = check_calibration(read_json_object(path / CALIBRATION_FILE, "calibration"), str(path / CALIBRATION_FILE))
    if (path / THRESHOLD_FILE).is_file():
        thr = check_threshold(read_json_object(path / THRESHOLD_FILE, "threshold"), cal is not None, str(path / THRESHOLD_FILE))
        # a threshold.json copied in by hand from another scoring run is caught here too
        check_scored_with(thr, str(path / THRESHOLD_FILE), mean, str(path / MEAN_FILE), warn_missing=False)
    return ModelDir(embedder, cfg, mean, cal, thr, path)
