"""Every ``configs/model/*.yaml`` composes into a training run that takes a Lightning step."""

import math
from pathlib import Path

import pytest

from tests.conftest import TINY_NET
from xvector import CONFIG_DIR
from xvector.cli.train import train

MODELS = sorted(p.stem for p in (Path(CONFIG_DIR) / "model").glob("*.yaml"))
# Data and front-end sizes of the tiny test run (TINY_NET's "model." entries are x-vector's keys).
TINY_DATA = [o for o in TINY_NET if not o.startswith("model.")]


def _shrink(model_cfg) -> list[str]:
    """Overrides that keep a model's layout but make every width tiny (32 channels, 16 elsewhere)."""
    out = []
    if "channels" in model_cfg:
        n = len(model_cfg.channels)
        out.append(f"model.channels=[{','.join(['32'] * (n - 1) + ['64'])}]")
    for key, value in (("embed_dim", 16), ("se_channels", 8), ("attention_channels", 8)):
        if key in model_cfg:
            out.append(f"model.{key}={value}")
    if model_cfg.get("segment_dims"):
        out.append(f"model.segment_dims=[{','.join(['16'] * len(model_cfg.segment_dims))}]")
    if "attention_dim" in (model_cfg.get("pooling") or {}):
        out.append("model.pooling.attention_dim=8")
    return out


@pytest.mark.parametrize("model", MODELS)
def test_model_config_runs_fast_dev_run(tiny_corpus, tmp_path, compose_config, model):
    base = [f"model={model}", f"paths.data_dir={tiny_corpus}", f"paths.output_dir={tmp_path}", *TINY_DATA]
    full = compose_config("train", base)
    cfg = compose_config("train", [*base, *_shrink(full.model), "trainer.fast_dev_run=true", "head=aam"])
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss"])
