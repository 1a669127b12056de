"""``xvector-train``: compose a run from Hydra configs and fit it with Lightning.

    xvector-train experiment=synthetic_xvector_softmax paths.output_dir=exp/xvector
    xvector-train ... ckpt_path=exp/xvector/checkpoints/last.ckpt   # resume
    xvector-train ... init_from=exp/xvector/checkpoints/last.ckpt   # fine-tune: weights only
    xvector-train ... trainer=ddp trainer.devices=2                  # data-parallel
"""

from __future__ import annotations

import logging

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from xvector import CONFIG_DIR
from xvector.cli import help as _help  # noqa: F401 - registers the --help resolvers
from xvector.cli.errors import one_line_errors
from xvector.training.backends import CudaSettings
from xvector.training.checkpoints import (
    AtomicCheckpointIO,
    RemoveStaleTemporaries,
    load_init_weights,
)
from xvector.training.progress import EpochSummary, progress_bar_enabled
from xvector.training.system import SpeakerSystem, shard_validation

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[SpeakerSystem, L.LightningDataModule, L.Trainer]:
    """Seed, then instantiate the system, data module and trainer that ``cfg`` describes.

    ``init_from`` loads another run's weights (strictly; ``init_reset_head`` keeps a fresh
    head; ``init_from_required`` makes it mandatory), ``compile`` compiles the embedding net in place (``nn.Module.compile``, so
    checkpoint keys do not change), and every checkpoint is written atomically (temporaries that a
    killed save left in the checkpoint folders are removed when fitting starts).

    Raises:
        ValueError: when ``init_from_required`` is set without ``init_from``, or the
            ``init_from`` checkpoint does not fit the net (see :func:`load_init_weights`).
    """
    if cfg.get("init_from_required") and not cfg.get("init_from"):
        raise ValueError("this run fine-tunes a trained net (init_from_required=true): give init_from=<checkpoint>")
    L.seed_everything(cfg.seed, workers=True)
    datamodule = shard_validation(instantiate(cfg.data))
    system = SpeakerSystem(
        features=instantiate(cfg.features),
        net=instantiate(cfg.model),
        head=instantiate(cfg.head),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        num_classes=datamodule.num_speakers,
        val_trials=cfg.val_trials if datamodule.val_dir else None,
        config=OmegaConf.to_container(cfg, resolve=True),
        spec_augment=instantiate(cfg.spec_augment) if cfg.get("spec_augment") else None,
        nan_policy=cfg.get("nan_policy", "error"),
        batch_augment=getattr(datamodule, "batch_augment", None),
        nan_check_every_n_steps=cfg.get("nan_check_every_n_steps", 100),
    )
    if cfg.get("init_from"):
        loaded = load_init_weights(system, cfg.init_from, reset_head=cfg.get("init_reset_head", False))
        log.info("initialised %d tensors from %s", len(loaded), cfg.init_from)
    if cfg.get("compile"):
        system.embedder.net.compile(backend=cfg.get("compile_backend", "inductor"))
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values() if c]
    callbacks += [RemoveStaleTemporaries(), EpochSummary(),
                  CudaSettings(cfg.get("cudnn_benchmark", True), cfg.get("matmul_precision", "high"))]
    loggers = [instantiate(lg) for lg in cfg.get("logger", {}).values() if lg]
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress_bar_enabled(cfg.trainer.get("enable_progress_bar")),
    )
    return system, datamodule, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the system described by ``cfg``; return the final logged metrics."""
    system, datamodule, trainer = build(cfg)
    classes, speeds = datamodule.num_speakers, len(getattr(datamodule, "speeds", (1.0,)))
    speakers = classes // speeds
    per = f" ({classes} classes: {speeds} speeds each)" if speeds > 1 else ""
    log.info("training %d speakers%s, %d parameters", speakers, per, sum(p.numel() for p in system.parameters()))
    trainer.fit(system, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    with one_line_errors("xvector-train"):
        train(cfg)


if __name__ == "__main__":
    main()
