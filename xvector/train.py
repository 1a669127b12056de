"""``xvector-train``: compose a run from Hydra configs and fit it with Lightning.

    xvector-train experiment=synthetic_xvector_softmax paths.output_dir=exp/xvector
    xvector-train ... ckpt_path=exp/xvector/checkpoints/last.ckpt   # resume
"""

from __future__ import annotations

import logging

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from xvector import CONFIG_DIR
from xvector.lit_module import SpeakerSystem

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the system described by ``cfg``; return the final logged metrics."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    system = SpeakerSystem(
        features=instantiate(cfg.features),
        net=instantiate(cfg.model),
        head=instantiate(cfg.head),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        num_classes=datamodule.num_speakers,
        val_trials=cfg.val_trials if datamodule.val_dir else None,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values()]
    loggers = [instantiate(lg) for lg in cfg.get("logger", {}).values()]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    log.info("training %s speakers, %d parameters", datamodule.num_speakers, sum(p.numel() for p in system.parameters()))
    trainer.fit(system, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
