"""Checkpoint files: atomic saving, strict weight initialisation, and weight averaging.

* :class:`AtomicCheckpointIO` is the Lightning plugin every training run saves through: the
  checkpoint goes to a temporary name in the same folder, is flushed to disk, then renamed, so
  a crash or a SIGKILL mid-save never leaves a truncated ``last.ckpt``. (Lightning's own
  ``TorchCheckpointIO`` writes through an fsspec transaction whose temporary file lies in the
  system temp folder; when that is another file system the final "rename" is a copy into the
  final name, which a crash can cut short.)
* :class:`RemoveStaleTemporaries` deletes, when training starts, the hidden temporaries that a
  process killed mid-save left in the checkpoint folders (``.last.ckpt.<random>.tmp``).
* :func:`load_init_weights` starts a run from another run's weights (``init_from=``), e.g. for
  large-margin fine-tuning; unlike a resume, optimizer, schedule and counters start afresh. It
  also takes a model directory (``xvector-export`` / ``xvector-import``): its front-end and net,
  with a new head.
* :func:`average_checkpoints` averages the weights of several checkpoints of one run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from xvector.atomic import atomic_output, remove_stale_temporaries
from xvector.inference.embedder import CONFIG_KEY, read_checkpoint

HEAD_PREFIX = "head."
TMP_SUFFIX = ".tmp"

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes to a temporary name beside the target, then renames."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (got {storage_options!r})")
        with atomic_output(path, suffix=TMP_SUFFIX) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())


class RemoveStaleTemporaries(L.Callback):
    """On fit start, delete the checkpoint temporaries of a killed run from every checkpoint folder.

    :class:`AtomicCheckpointIO` never leaves a truncated checkpoint, but a SIGKILL mid-save
    leaves its hidden temporary (``.last.ckpt.<random>.tmp``, as large as a checkpoint) beside
    the intact file; a resumed run (or a new one in the same folder) removes them and logs how
    many. Only global rank 0 saves checkpoints, so only it cleans; no save of this run is in
    flight when fitting starts.
    """

    def __init__(self) -> None:
        self.removed: list[Path] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        folders = {Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)}
        for folder in sorted(folders):
            stale = remove_stale_temporaries(folder, "*.ckpt", TMP_SUFFIX)
            if stale:
                log.warning("removed %d stale temporary checkpoint file(s) left by a killed save in %s: %s",
                            len(stale), folder, ", ".join(p.name for p in stale))
            self.removed += stale


def load_init_weights(module: nn.Module, ckpt_path: str | os.PathLike, reset_head: bool = False) -> list[str]:
    """Copy a checkpoint's weights into ``module`` (a :class:`~xvector.training.system.SpeakerSystem`), strictly.

    Every parameter and buffer must be present with the same shape on both sides, so a
    checkpoint of another architecture is refused rather than half-loaded.

    Args:
        module: the freshly built system.
        ckpt_path: a training checkpoint, or a model directory (which holds the front-end and
            net only, so ``reset_head`` must be set: the run trains a new head).
        reset_head: keep ``module``'s freshly initialised classification head (``head.*``)
            instead of the checkpoint's, e.g. to fine-tune on a new set of speakers.

    Returns:
        The names of the tensors loaded.

    Raises:
        ValueError: naming the checkpoint and the first mismatching parameter (missing,
            unexpected, or of another shape); a head of another size points to
            ``init_reset_head``.
    """
    if Path(ckpt_path).is_dir():
        if not reset_head:
            raise ValueError(f"{ckpt_path}: a model directory has no classification head: set init_reset_head=true "
                             "(a new head for this run's speakers)")
        src = _model_dir_state(Path(ckpt_path))
    else:
        src = read_checkpoint(ckpt_path)["state_dict"]
    dst = module.state_dict()

    def kept(key: str) -> bool:
        return not (reset_head and key.startswith(HEAD_PREFIX))

    missing = [k for k in dst if kept(k) and k not in src]
    unexpected = [k for k in src if kept(k) and k not in dst]
    if missing or unexpected:
        raise ValueError(
            f"{ckpt_path}: its weights are of another architecture than this run's net: "
            + (f"parameter {missing[0]!r} is missing from the checkpoint" if missing
               else f"the checkpoint has parameter {unexpected[0]!r}, which this net lacks")
            + f" ({len(missing)} missing, {len(unexpected)} unexpected)"
        )
    for key in (k for k in dst if kept(k)):
        if src[key].shape != dst[key].shape:
            hint = (
                " (a different number of speakers: set init_reset_head=true to train a new head)"
                if key.startswith(HEAD_PREFIX) else " (a different architecture)"
            )
            raise ValueError(
                f"{ckpt_path}: parameter {key!r} has shape {tuple(src[key].shape)} in the checkpoint "
                f"but {tuple(dst[key].shape)} in this run's net{hint}"
            )
    state = {k: src[k] for k in dst if kept(k)}
    module.load_state_dict(state, strict=False)
    return list(state)


def _model_dir_state(path: Path) -> dict[str, torch.Tensor]:
    """A model directory's embedder weights under the system's names (``embedder.*``)."""
    from xvector.inference.model_dir import WEIGHTS_FILE

    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ValueError(f"{path}: not a model directory or checkpoint (no {WEIGHTS_FILE})")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(f"{weights}: cannot read ({err})") from err
    return {f"embedder.{k}": v for k, v in state.items()}


def last_checkpoints(folder: str | os.PathLike, k: int) -> list[Path]:
    """The ``k`` latest checkpoints of ``folder`` by stored global step (ties: newest file).

    ``last.ckpt`` usually repeats the latest periodic checkpoint; one file per step is kept.

    Raises:
        ValueError: naming ``folder`` when it holds fewer than ``k`` distinct steps.
    """
    by_step: dict[int, Path] = {}
    for path in sorted(Path(folder).glob("*.ckpt"), key=lambda p: (p.stat().st_mtime, p.name)):
        step = int(torch.load(path, map_location="cpu", weights_only=False, mmap=True).get("global_step", -1))
        by_step.setdefault(step, path)  # the oldest file of a step: a periodic one, not last.ckpt
    if k < 1 or len(by_step) < k:
        raise ValueError(f"{folder}: {len(by_step)} checkpoints of distinct steps, cannot take the last {k}")
    return [by_step[s] for s in sorted(by_step)[-k:]]


def average_checkpoints(paths: Sequence[str | os.PathLike], output: str | os.PathLike) -> dict[str, Any]:
    """Average the weights of ``paths`` into a new checkpoint at ``output`` (written atomically).

    Floating-point tensors are averaged (in float64, stored in their own dtype); integer
    buffers (e.g. batch-norm counters) come from the last checkpoint. The result carries the
    last checkpoint's config, so :func:`~xvector.inference.embedder.load_embedder` and ``init_from=``
    accept it; it holds no optimizer state and cannot be resumed from.

    Returns:
        The checkpoint dict that was written.

    Raises:
        ValueError: when no path is given, or a checkpoint's parameters differ in names or
            shapes from the first one's (naming both files and the parameter).
    """
    if not paths:
        raise ValueError("average_checkpoints: no checkpoints given")
    ckpts = [read_checkpoint(p) for p in paths]
    first = ckpts[0]["state_dict"]
    for path, ckpt in zip(paths[1:], ckpts[1:]):
        state = ckpt["state_dict"]
        if state.keys() != first.keys():
            diff = sorted(state.keys() ^ first.keys())[0]
            raise ValueError(f"{path}: parameter {diff!r} is in only one of {paths[0]} and this checkpoint")
        for key, value in state.items():
            if value.shape != first[key].shape:
                raise ValueError(f"{path}: parameter {key!r} has shape {tuple(value.shape)}, "
                                 f"but {tuple(first[key].shape)} in {paths[0]}")
    last = ckpts[-1]
    averaged = {}
    for key, value in last["state_dict"].items():
        if value.is_floating_point():
            total = sum(c["state_dict"][key].double() for c in ckpts)
            averaged[key] = (total / len(ckpts)).to(value.dtype)
        else:
            averaged[key] = value.clone()
    out = {
        CONFIG_KEY: last[CONFIG_KEY],
        "num_classes": last.get("num_classes"),
        "state_dict": averaged,
        "epoch": last.get("epoch"),
        "global_step": last.get("global_step"),
        "averaged_from": [str(p) for p in paths],
    }
    AtomicCheckpointIO().save_checkpoint(out, output)
    return out
