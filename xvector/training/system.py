"""The training system: features + embedding net + classification head + cross-entropy.

Validation embeds whole utterances of the validation set and scores its trial list with the
same functions as ``xvector-score`` (:mod:`xvector.scoring.cosine`, :mod:`xvector.metrics`),
logging ``val/eer`` and ``val/min_dcf``. Under DDP every rank embeds its share of the
utterances; the shares are gathered and de-duplicated before scoring, so ``val/eer`` is the
single-process value. The resolved run config is stored in every checkpoint, so
:func:`~xvector.inference.embedder.load_embedder` rebuilds the net from the checkpoint alone; checkpoints also carry the
RNG states (and Lightning stores the training loader's place in its epoch,
:class:`~xvector.training.resumable.ResumableLoader`), so a run resumed from an end-of-epoch or a
mid-epoch checkpoint continues exactly.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from xvector.data.lists import Trial, read_trials
from xvector.inference.embedder import CONFIG_KEY, Embedder
from xvector.metrics import verification_metrics
from xvector.scoring.cosine import score_trials, trial_labels
from xvector.training.nan_guard import POLICIES, NanGuard, nonfinite_message

RNG_KEY = "xvector_rng"
NAN_POLICIES = POLICIES

log = logging.getLogger(__name__)


def merge_rank_embeddings(parts: Sequence[tuple[Sequence[str], np.ndarray]]) -> tuple[list[str], np.ndarray]:
    """Join per-rank ``(utts, embeddings (N_r, D))`` into one set, keeping each utterance once.

    A distributed sampler pads the last ranks with repeats of the first items, so the same
    utterance can arrive twice; its first copy is kept (the copies are the same utterance
    through the same weights).

    Example:
        >>> import numpy as np
        >>> utts, embs = merge_rank_embeddings([(["a", "c"], np.array([[1.0], [3.0]])), (["b", "a"], np.array([[2.0], [1.0]]))])
        >>> utts, embs.ravel().tolist()
        (['a', 'c', 'b'], [1.0, 3.0, 2.0])
    """
    utts: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim = next((np.asarray(e).shape[1] for _, e in parts if len(e)), 0)
    for part_utts, part_embs in parts:
        for utt, row in zip(part_utts, np.asarray(part_embs)):
            if utt not in seen:
                seen.add(utt)
                utts.append(utt)
                rows.append(row)
    return utts, (np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32))


class _Batches(Dataset):
    """Item ``k`` = the list of items of batch ``k`` (collated by the loader's ``collate_fn``)."""

    def __init__(self, dataset: Dataset, batches: Sequence[Sequence[int]]) -> None:
        self.dataset, self.batches = dataset, [list(b) for b in batches]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> list:
        return [self.dataset[i] for i in self.batches[k]]


class _RankBatchSampler(DistributedSampler):
    """Batch numbers ``rank, rank + world, ...``: this rank's share, no padding, in order.

    A :class:`DistributedSampler` so that Lightning leaves the loader as it is.
    """

    def __init__(self, num_batches: int, rank: int, world_size: int) -> None:
        super().__init__(range(num_batches), num_replicas=world_size, rank=rank, shuffle=False)
        self.indices = list(range(rank, num_batches, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def shard_batches(loader: DataLoader, rank: int, world_size: int) -> DataLoader:
    """The batches of ``loader`` (a batch-sampled loader) that rank ``rank`` of ``world_size`` runs.

    Validation batches are built by length (:class:`~xvector.data.collate.LengthSortedBatchSampler`),
    which Lightning cannot re-shard; this hands out whole batches round-robin instead, each
    utterance to exactly one rank (:class:`SpeakerSystem` gathers the embeddings afterwards).
    """
    if world_size <= 1 or loader.batch_sampler is None:
        return loader
    batches = list(loader.batch_sampler)
    return DataLoader(
        _Batches(loader.dataset, batches),
        batch_size=None,
        sampler=_RankBatchSampler(len(batches), rank, world_size),
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
    )


def shard_validation(datamodule: L.LightningDataModule) -> L.LightningDataModule:
    """Make ``datamodule.val_dataloader`` give each DDP rank its share of the batches.

    Lightning's distributed sampler cannot be injected into a custom batch sampler (it raises
    a ``TypeError``); on one process the loader is returned unchanged.
    """
    original = datamodule.val_dataloader

    def val_dataloader():
        loader = original()
        trainer = getattr(datamodule, "trainer", None)
        if not isinstance(loader, DataLoader) or trainer is None or trainer.world_size <= 1:
            return loader
        return shard_batches(loader, trainer.global_rank, trainer.world_size)

    datamodule.val_dataloader = val_dataloader
    return datamodule


def _rng_states() -> dict:
    """The RNG states as tensors and plain values (loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class SpeakerSystem(L.LightningModule):
    """Speaker-classification training of an embedding extractor.

    Args:
        features: front-end module ``(wav, wav_lens) -> (feats (B, T, F), frame_lens)`` with
            an ``out_dim`` attribute.
        net: factory ``net(in_channels=F)`` for the embedding net ``(B, F, T) -> (B, D)``
            exposing ``head_in_dim`` and ``classifier_input``.
        head: factory ``head(in_dim, num_classes)`` returning logits ``(B, num_classes)``.
        optimizer: factory ``optimizer(params)``.
        num_classes: number of training speakers.
        scheduler: optional factory ``scheduler(optimizer, total_steps=...)``, stepped per step.
        val_trials: trial list of the validation set (``enroll test target|nontarget``).
        config: the resolved run config, saved in checkpoints for rebuilding.
        spec_augment: optional module ``(feats (B, T, F), frame_lens) -> feats`` applied to the
            training features only (e.g. :class:`~xvector.features.specaugment.SpecAugment`).
        nan_policy: what a non-finite training loss does: ``"error"`` stops with a
            ``FloatingPointError`` naming the global step and the batch's utterances;
            ``"skip"`` drops the batch (no update), logs a warning and counts it in
            ``train/skipped_batches``. Under DDP the ranks decide together: a non-finite loss
            on any rank makes every rank skip that step and count it once. The step does not
            wait for the decision (:mod:`xvector.training.nan_guard`): ``error`` is raised at
            the next check (every ``nan_check_every_n_steps`` steps, epoch end, checkpoint);
            ``skip`` is decided on the device when the optimizer is fused
            (``+optimizer.fused=true``), and with one host sync per step otherwise (also under
            gradient accumulation or a gradient scaler, and on the first step).
        batch_augment: the on-device half of ``data.augment_on=device``
            (:class:`~xvector.data.batch_augment.BatchAugment`), applied to each training batch
            first; None when the workers augment. Kept out of the module tree: its noise banks
            are neither checkpointed nor broadcast by DDP.
        nan_check_every_n_steps: steps between two looks at the non-finite flags.

    Raises:
        ValueError: on an unknown ``nan_policy``.
    """

    def __init__(
        self,
        features: nn.Module,
        net: Callable[..., nn.Module],
        head: Callable[..., nn.Module],
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        scheduler: Callable[..., Any] | None = None,
        val_trials: str | os.PathLike | None = None,
        config: dict | None = None,
        spec_augment: nn.Module | None = None,
        nan_policy: str = "error",
        batch_augment: nn.Module | None = None,
        nan_check_every_n_steps: int = 100,
    ) -> None:
        super().__init__()
        self.nan_guard = NanGuard(nan_policy, nan_check_every_n_steps)
        self.embedder = Embedder(features, net(in_channels=features.out_dim))
        self.head = head(in_dim=self.embedder.net.head_in_dim, num_classes=num_classes)
        self.spec_augment = spec_augment
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.num_classes = num_classes
        self.val_trials: list[Trial] = read_trials(val_trials) if val_trials else []
        self.config = config
        self.skipped_batches = 0
        self._finite_batches_since_step = 0  # with nan_policy=skip: batches that will update the weights
        self._found_inf: torch.Tensor | None = None  # this step's skip flag, for a fused optimizer
        self._saved_state: list[torch.Tensor] = []  # and the buffers to put back when it is set
        self._batch_augment = (batch_augment,) if batch_augment is not None else ()  # a tuple: not a submodule
        self._val_utts: list[str] = []
        self._val_embs: list[torch.Tensor] = []

    def forward(self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings ``(B, D)`` of ``wav (B, S)``."""
        return self.embedder(wav, wav_lens)

    def _embed(self, wav: torch.Tensor, wav_lens: torch.Tensor | None, augment: bool) -> torch.Tensor:
        """Embeddings ``(B, D)``; features in float32 even under mixed precision, as at extraction.

        ``wav_lens=None`` says no row is padded: the net then skips its length masks (the same
        values, fewer passes over the frames).
        """
        with torch.autocast(device_type=wav.device.type, enabled=False):
            feats, frame_lens = self.embedder.features(wav.float(), wav_lens)  # (B, T, F), (B,)
            if augment and self.spec_augment is not None:
                feats = self.spec_augment(feats, frame_lens)
        return self.embedder.net(feats.transpose(1, 2), None if wav_lens is None else frame_lens)  # (B, F, T) → (B, D)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # On the host, before the copy: whether a training batch is unpadded (its crops all have
        # one length, as every crop batch) costs nothing here and a device sync after it.
        if self._trainer is not None and self.trainer.training and isinstance(batch, dict):
            lens, wav = batch.get("wav_lens"), batch.get("wav")
            if isinstance(lens, torch.Tensor) and isinstance(wav, torch.Tensor) and "speed_rows" not in batch:
                batch["unpadded"] = bool((lens == wav.shape[-1]).all())
        return batch

    @property
    def batch_augment(self) -> nn.Module | None:
        return self._batch_augment[0] if self._batch_augment else None

    def _training_input(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``wav (B, S)``, ``wav_lens (B,)`` of a training batch, after on-device augmentation."""
        augment = self.batch_augment
        if augment is None:
            return batch["wav"], batch["wav_lens"]
        device = batch["wav"].device
        if getattr(augment, "_on", None) != device:  # banks follow the batches (host-side check)
            augment.to(device)
            augment._on = device
        with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
            return augment(batch)

    def _model_state(self) -> list[torch.Tensor]:
        """The buffers a skipped batch must leave as they were (batch-norm statistics)."""
        return [b for m in (self.embedder, self.head, self.spec_augment) if m is not None for b in m.buffers()]

    def _skip_on_device(self) -> bool:
        """Whether ``skip`` can be decided without a host sync: one fused optimizer taking a
        ``found_inf`` tensor, no gradient scaler, no accumulation, not the first step (a fused
        SGD skipped on its first step would keep an uninitialised momentum buffer)."""
        trainer = self.trainer
        optimizers = trainer.optimizers
        return (len(optimizers) == 1 and getattr(optimizers[0], "_step_supports_amp_scaling", False)
                and getattr(trainer.precision_plugin, "scaler", None) is None
                and trainer.accumulate_grad_batches == 1 and self.global_step > 0)

    def training_step(self, batch: dict, batch_idx: int) -> dict | torch.Tensor:
        wav, wav_lens = self._training_input(batch)
        if self.batch_augment is not None or batch.get("unpadded", False):
            wav_lens = None  # fixed-size crops: no masks to apply
        skip = self.nan_guard.policy == "skip"
        # A skipped batch must leave no trace: its forward pass already moved the batch-norm
        # running statistics (to NaN), so keep a copy of the buffers to put back.
        buffers = [b.clone() for b in self._model_state()] if skip else None
        embedding = self._embed(wav, wav_lens, augment=True)
        head_in = self.embedder.net.classifier_input(embedding)
        logits = self.head(head_in, batch["labels"])
        loss = F.cross_entropy(logits.float(), batch["labels"])
        if skip and not self._skip_on_device():
            if self._skip_blocking(loss, batch, batch_idx, buffers):
                return self._zero_loss()
        else:
            bad = self.nan_guard.record(loss, self.global_step, self.current_epoch, batch_idx, batch["utts"])
            if skip:  # decided on the device: the fused step drops the update, and the statistics
                self._found_inf = bad.float()  # are put back after the backward pass (which reads them)
                self._saved_state = buffers
        self._finite_batches_since_step += 1
        with torch.no_grad():  # classification accuracy without the margin, as Kaldi reports it
            acc = (self.head(head_in.detach()).argmax(-1) == batch["labels"]).float().mean()
        size = len(batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/acc", acc, prog_bar=True, batch_size=size)
        return {"loss": loss, "acc": acc}  # the accuracy for EpochSummary's epoch mean

    def _skip_blocking(self, loss: torch.Tensor, batch: dict, batch_idx: int, buffers: list[torch.Tensor]) -> bool:
        """``skip`` decided on the host (one sync): True when this batch is dropped."""
        # All ranks take the same decision, so none waits for a gradient sync that never comes.
        finite = bool(torch.isfinite(loss))
        if not self.trainer.strategy.reduce_boolean_decision(not finite, all=False):
            return False
        value = f"{loss.item()}" if not finite else f"on another rank; {loss.item():.4f} here"
        where = nonfinite_message(value, self.global_step, self.current_epoch, batch_idx, batch["utts"])
        self.skipped_batches += 1
        with torch.no_grad():
            for buffer, saved in zip(self._model_state(), buffers):
                buffer.copy_(saved)
        log.warning("skipping batch: %s (%d skipped so far)", where, self.skipped_batches)
        return True

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.nan_guard.due:
            self._check_nonfinite()

    def _check_nonfinite(self) -> None:
        """Look at the steps' non-finite flags (raises for ``nan_policy=error``)."""
        self.skipped_batches += self.nan_guard.resolve()

    def _zero_loss(self) -> torch.Tensor:
        """A finite 0 that reaches every parameter, for a skipped batch.

        Lightning refuses ``None`` from ``training_step`` under DDP, and DDP's reducer expects a
        backward pass through every parameter on every rank each step; this one all-reduces
        zero gradients, and :meth:`on_before_optimizer_step` then withholds the update.
        """
        return sum((p.sum() for p in self.parameters() if p.requires_grad), torch.zeros((), device=self.device)) * 0.0

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # After backward (and the gradient all-reduce), before clipping and the step. When every
        # batch since the last step was skipped, no parameter has a gradient and the optimizer
        # changes nothing (no momentum, no weight decay, no step count) - as a skipped batch on
        # one process. A skipped batch among accumulated ones adds its zero gradients.
        if self._found_inf is not None:  # nan_policy=skip on the device: the fused step skips itself
            with torch.no_grad():
                for buffer, saved in zip(self._model_state(), self._saved_state):
                    buffer.copy_(torch.where(self._found_inf > 0, saved, buffer))
            optimizer.found_inf, self._found_inf, self._saved_state = self._found_inf, None, []
        elif hasattr(optimizer, "found_inf"):
            del optimizer.found_inf
        if self.nan_policy == "skip" and self._finite_batches_since_step == 0:
            optimizer.zero_grad(set_to_none=True)
        self._finite_batches_since_step = 0

    @property
    def nan_policy(self) -> str:
        return self.nan_guard.policy

    def on_train_epoch_end(self) -> None:
        self._check_nonfinite()
        if self.nan_policy == "skip":
            self.log("train/skipped_batches", float(self.skipped_batches))

    def on_validation_epoch_start(self) -> None:
        self._val_utts, self._val_embs = [], []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._val_utts.extend(batch["utts"])
        self._val_embs.append(self._embed(batch["wav"], batch["wav_lens"], augment=False).float().cpu())

    def _gathered_embeddings(self) -> tuple[list[str], np.ndarray]:
        """All ranks' validation embeddings, each utterance once (this rank's alone without DDP)."""
        embs = torch.cat(self._val_embs).numpy() if self._val_embs else np.zeros((0, 0), dtype=np.float32)
        part = (list(self._val_utts), embs)
        if self.trainer.world_size <= 1 or not torch.distributed.is_initialized():
            return merge_rank_embeddings([part])
        parts: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(parts, part)
        return merge_rank_embeddings(parts)

    def on_validation_epoch_end(self) -> None:
        if not self.val_trials:
            return
        utts, embs = self._gathered_embeddings()  # a collective under DDP: every rank gets here
        if not utts:
            return
        trials = self.val_trials
        loaders = self.trainer.val_dataloaders
        expected = len(loaders.dataset) if isinstance(loaders, DataLoader) else None
        if isinstance(loaders, DataLoader) and isinstance(loaders.dataset, _Batches):
            expected = len(loaders.dataset.dataset)
        if len(utts) != expected:
            # A limited loop (sanity check, fast_dev_run, limit_val_batches) saw a subset.
            have = set(utts)
            trials = [t for t in trials if t.enroll in have and t.test in have]
        labels = trial_labels(trials) if trials else np.zeros(0, dtype=bool)
        if labels.all() or not labels.any():
            return  # a subset with a single class has no EER
        metrics = verification_metrics(score_trials(utts, embs, trials), labels, p_targets=(0.01,))
        # Every rank scored the same gathered set: the values agree without a sync.
        self.log("val/eer", float(metrics["eer"]), prog_bar=True)
        self.log("val/min_dcf", float(metrics["min_dcf_0.01"]))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self._check_nonfinite()  # never write a checkpoint past a non-finite loss (error), count skips
        checkpoint[CONFIG_KEY] = self.config
        checkpoint["num_classes"] = self.num_classes
        checkpoint["skipped_batches"] = self.skipped_batches
        checkpoint[RNG_KEY] = _rng_states()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Resume (ckpt_path=): continue the random streams (crops, dither, shuffling, masks)
        # where the interrupted run left them.
        self.skipped_batches = int(checkpoint.get("skipped_batches", 0))
        if RNG_KEY in checkpoint:
            _set_rng_states(checkpoint[RNG_KEY])
