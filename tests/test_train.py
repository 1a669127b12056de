"""Training through the Hydra config and Lightning, on a tiny generated corpus."""

import math
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_NET
from xvector import CONFIG_DIR
from xvector.lit_module import load_embedder
from xvector.train import train


def _overrides(corpus, out, *extra):
    return [f"paths.data_dir={corpus}", f"paths.output_dir={out}", *TINY_NET, *extra]


EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_fast_dev_run(tiny_corpus, tmp_path, compose_config, experiment):
    cfg = compose_config(
        "train", [f"experiment={experiment}", *_overrides(tiny_corpus, tmp_path, "trainer.fast_dev_run=true")]
    )
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss"])


def test_experiment_and_features_compose(compose_config, tmp_path):
    cfg = compose_config("train", ["experiment=synthetic_xvector_softmax", "features=mfcc", f"paths.output_dir={tmp_path}"])
    assert cfg.features._target_.endswith("MFCC") and cfg.features.num_ceps == 30
    assert cfg.model.channels == [512, 512, 512, 512, 1500]
    assert cfg.val_trials == "data/synthetic/dev/trials"
    aam = compose_config("train", ["experiment=synthetic_xvector_aam", f"paths.output_dir={tmp_path}"])
    assert aam.head._target_.endswith("AAMSoftmax") and aam.model.segment_dims == []


def test_checkpoint_rebuilds_embedder_and_resumes(tiny_corpus, tmp_path, compose_config):
    args = _overrides(tiny_corpus, tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=2")
    train(compose_config("train", args))
    ckpts = sorted((tmp_path / "checkpoints").glob("*.ckpt"))
    assert {p.name for p in ckpts} >= {"last.ckpt"} and len(ckpts) == 2  # best val/eer + last
    embedder, cfg = load_embedder(tmp_path / "checkpoints" / "last.ckpt")
    assert cfg.model.embed_dim == 16
    emb = embedder(torch.randn(2, 8000), torch.tensor([8000, 6000]))
    assert emb.shape == (2, 16) and torch.isfinite(emb).all()
    assert (tmp_path / "csv" / "metrics.csv").read_text().count("val/eer") >= 1
    # resume for one more epoch from last.ckpt
    metrics = train(compose_config("train", [*args, "trainer.max_epochs=2", f"ckpt_path={tmp_path}/checkpoints/last.ckpt"]))
    assert 0.0 <= metrics["val/eer"] <= 1.0
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4  # 2 + 2


def test_load_embedder_rejects_foreign_checkpoint(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="not an xvector training checkpoint"):
        load_embedder(tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="does not exist"):
        load_embedder(tmp_path / "missing.ckpt")
