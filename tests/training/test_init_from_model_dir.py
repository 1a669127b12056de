"""Fine-tuning from a model directory (``xvector-export`` / ``xvector-import``): ``init_from=<dir>``."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import TINY_NET
from xvector.cli.train import build, train
from xvector.importers.speechbrain import import_speechbrain, write_fixture
from xvector.inference.model_dir import init_checkpoint, tiny_config, write_model_dir


def _args(corpus, out, *extra):
    return [f"paths.data_dir={corpus}", f"paths.output_dir={out}", *TINY_NET, "trainer.enable_progress_bar=false", *extra]


def test_init_from_a_model_directory_needs_a_new_head_and_loads_the_embedder(tiny_corpus, tmp_path, compose_config):
    model = write_model_dir(tmp_path / "model", init_checkpoint(tmp_path / "tiny.ckpt", tiny_config(), seed=5))
    with pytest.raises(ValueError, match="model directory has no classification head: set init_reset_head=true"):
        build(compose_config("train", _args(tiny_corpus, tmp_path / "a", f"init_from={model}")))
    system, _, _ = build(compose_config("train", _args(tiny_corpus, tmp_path / "b", f"init_from={model}",
                                                       "init_reset_head=true")))
    source = torch.load(model / "embedder.pt", weights_only=True)
    for key, value in source.items():
        torch.testing.assert_close(system.state_dict()[f"embedder.{key}"], value, rtol=0, atol=0)


def test_an_imported_speechbrain_model_fine_tunes(tiny_corpus, tmp_path, compose_config):
    """model= and features= name the imported net (its config.yaml); init_from= the model directory."""
    folder = write_fixture(tmp_path / "sb", n_mels=24, tdnn_channels=[32, 32, 32, 32, 64], lin_neurons=16)
    model = import_speechbrain(folder, tmp_path / "model")
    overrides = _args(tiny_corpus, tmp_path / "ft", "model=xvector_speechbrain", "model.channels=[32,32,32,32,64]",
                      "model.embed_dim=16", "features=speechbrain_fbank",
                      "features.num_mel_bins=24", f"init_from={model}", "init_reset_head=true", "head=aam",
                      "trainer.fast_dev_run=true")
    overrides = [o for o in overrides if not o.startswith("model.segment_dims")]  # the imported net has none
    metrics = train(compose_config("train", overrides))
    assert math.isfinite(metrics["train/loss"])
