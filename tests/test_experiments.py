"""Every ``configs/experiment/*.yaml`` composes and trains a step under ``fast_dev_run``.

The directory is globbed, so new experiment files are covered without editing this test. Each
runs on the tiny corpus with its net shrunk (every width above 64 becomes 32, fbank bins 24)
and its data pointed at the corpus; augmentation folders are made small, and an experiment
that fine-tunes (``init_from_required``) starts from a checkpoint of its own net.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from xvector import CONFIG_DIR
from xvector.cli.train import build, train
from xvector.inference.embedder import CONFIG_KEY

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
SKIP_KEYS = ("kernel", "dilation", "scale", "in_channels")  # small structural ints stay as they are


def _shrink(node, prefix: str) -> list[str]:
    """Overrides setting every int > 64 under ``node`` (a model config) to 32."""
    out = []
    for key, value in node.items():
        path = f"{prefix}.{key}"
        if any(s in str(key) for s in SKIP_KEYS) or str(key).startswith("_"):
            continue
        if isinstance(value, DictConfig):
            out += _shrink(value, path)
        elif OmegaConf.is_list(value) and value and all(isinstance(v, int) for v in value) and max(value) > 64:
            out.append(f"{path}=[{','.join(str(min(v, 32)) for v in value)}]")
        elif isinstance(value, int) and not isinstance(value, bool) and value > 64:
            out.append(f"{path}=32")
    return out


@pytest.fixture(scope="module")
def augment_dir(tmp_path_factory) -> Path:
    """Small synthetic MUSAN / RIRS_NOISES folders for experiments that augment."""
    from xvector.corpora.synthetic.noise import make_augment_dirs

    out = tmp_path_factory.mktemp("augment")
    make_augment_dirs(out, n_noise=2, n_music=2, n_speech=3, rooms_per_size=1, rirs_per_room=1, min_sec=1.0, max_sec=1.5)
    return out


def _fast_overrides(compose_config, experiment: str, corpus: Path, augment: Path, out: Path) -> list[str]:
    base = [f"experiment={experiment}", f"paths.data_dir={corpus}", f"paths.output_dir={out}",
            f"++paths.augment_dir={augment}", f"++paths.musan_dir={augment}/musan", f"++paths.rirs_dir={augment}/RIRS_NOISES"]
    cfg = compose_config("train", base)
    extra = [f"data.train_dir={corpus}/train", f"data.val_dir={corpus}/dev", "data.num_workers=0",
             "data.batch_size=4", "data.val_batch_size=4", "data.chunk_sec=0.5",
             "trainer.fast_dev_run=true", "trainer.enable_progress_bar=false", "trainer.devices=1",
             "~trainer.strategy" if "strategy" in cfg.trainer else None,
             "data.train_shards=null" if cfg.data.get("train_shards") else None,
             "features.num_mel_bins=24" if "num_mel_bins" in cfg.features and "num_ceps" not in cfg.features else None,
             # one step is the whole schedule, so no warm-up: SGD at 0.2 sends a shrunk CAM++ to NaN
             "optimizer.lr=0.01" if cfg.optimizer.get("lr", 0) > 0.01 else None,
             *_shrink(cfg.model, "model")]
    return [*base, *(e for e in extra if e)]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_fast_dev_run(experiment, tiny_corpus, augment_dir, tmp_path, compose_config):
    overrides = _fast_overrides(compose_config, experiment, tiny_corpus, augment_dir, tmp_path)
    cfg = compose_config("train", overrides)
    if cfg.get("init_from_required") and not cfg.get("init_from"):
        with pytest.raises(ValueError, match="init_from=<checkpoint>"):
            train(cfg)
        # a checkpoint of the same (shrunk) net to fine-tune from
        system, _, _ = build(compose_config("train", [*overrides, "init_from_required=false"]))
        ckpt = tmp_path / "init.ckpt"
        torch.save({"state_dict": system.state_dict(), CONFIG_KEY: OmegaConf.to_container(cfg, resolve=True)}, ckpt)
        cfg = compose_config("train", [*overrides, f"init_from={ckpt}"])
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss"])


def test_large_margin_experiment_fine_tunes_the_aam_net(compose_config, tmp_path):
    lm = compose_config("train", ["experiment=synthetic_xvector_aam_lm", f"paths.output_dir={tmp_path}"])
    aam = compose_config("train", ["experiment=synthetic_xvector_aam", f"paths.output_dir={tmp_path}"])
    assert lm.model == aam.model and lm.features == aam.features  # init_from needs the same net
    assert lm.head.margin > aam.head.margin and lm.data.chunk_sec > aam.data.chunk_sec
    assert lm.optimizer.lr < aam.optimizer.lr / 10 and lm.trainer.max_epochs < aam.trainer.max_epochs
    assert lm.init_from_required and lm.init_from is None and lm.ckpt_path is None


def test_fine_tune_experiment_trains_a_new_head_gently(compose_config, tmp_path):
    ft = compose_config("train", ["experiment=synthetic_xvector_aam_ft", f"paths.output_dir={tmp_path}"])
    base = compose_config("train", ["experiment=synthetic_xvector_aam", f"paths.output_dir={tmp_path}"])
    assert ft.model == base.model and ft.features == base.features  # init_from needs the same net
    assert ft.init_from_required and ft.init_reset_head and ft.init_from is None
    assert ft.optimizer.lr < base.optimizer.lr / 2 and ft.trainer.max_epochs < base.trainer.max_epochs
    ramp = ft.callbacks.margin_scheduler
    assert ramp.start_epoch == 0 and ramp.initial_margin == 0 and ramp.end_epoch < ft.trainer.max_epochs


def test_the_custom_experiment_trains_with_the_channel_augmentation(tiny_corpus, augment_dir, tmp_path, compose_config):
    overrides = [*_fast_overrides(compose_config, "custom_ecapa_aam", tiny_corpus, augment_dir, tmp_path),
                 "augment@data=synthetic_channel"]
    cfg = compose_config("train", overrides)
    assert list(cfg.data.augment.transforms) == ["reverb", "noise", "music", "babble", "channel"]
    assert cfg.data.augment_on == "device"  # the batched channel, in the training step
    assert math.isfinite(train(cfg)["train/loss"])
