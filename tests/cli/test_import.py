"""xvector-import: a peer's model folder → a model directory every tool takes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import xvector
from xvector.cli.import_model import main
from xvector.importers.speechbrain import write_fixture
from xvector.importers.wespeaker import layout, random_state, write_folder

ARCH = dict(tdnn_channels=[16, 16, 16, 16, 32], lin_neurons=8)


def test_speechbrain_folder_imports_and_the_directory_serves_the_tools(tmp_path):
    folder = write_fixture(tmp_path / "sb", **ARCH)
    main([str(folder), str(tmp_path / "model")])
    info = json.loads((tmp_path / "model" / "info.json").read_text())
    assert info["imported_from"]["toolkit"] == "speechbrain" and info["imported_from"]["architecture"] == "Xvector"
    assert info["source_checkpoint"].endswith("embedding_model.ckpt") and info["embed_dim"] == 8
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    out = subprocess.run([sys.executable, "-m", "xvector.cli.verify", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"),
                          "--model", str(tmp_path / "model"), "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    score = json.loads(out.stdout)["score"]
    model = xvector.load_model(tmp_path / "model")
    assert score == pytest.approx(model.score(model.embed(tmp_path / "a.wav"), model.embed(tmp_path / "b.wav")), abs=1e-5)


def test_wespeaker_folder_is_recognised(tmp_path):
    config = {"model": "XVEC", "model_args": {"feat_dim": 24, "hid_dim": 16, "stats_dim": 32, "embed_dim": 8},
              "dataset_args": {"fbank_args": {"num_mel_bins": 24}}}
    folder = write_folder(tmp_path / "ws", config, random_state(layout(config), head_classes=3))
    main([str(folder), str(tmp_path / "model"), "--format", "torchscript"])
    names = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert names == ["config.yaml", "embedder.pt", "embedder.torchscript.pt", "info.json"]
    assert json.loads((tmp_path / "model" / "info.json").read_text())["imported_from"]["toolkit"] == "wespeaker"


def test_errors_are_one_line_and_write_nothing(tmp_path):
    with pytest.raises(SystemExit, match="^xvector-import: .*no such folder$"):
        main([str(tmp_path / "missing"), str(tmp_path / "model")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="neither a SpeechBrain folder .* nor a WeSpeaker one"):
        main([str(tmp_path / "empty"), str(tmp_path / "model")])
    folder = write_fixture(tmp_path / "sb", **ARCH)
    with pytest.raises(SystemExit, match="--checkpoint is for WeSpeaker folders"):
        main([str(folder), str(tmp_path / "model"), "--checkpoint", "x.pt"])
    main([str(folder), str(tmp_path / "model")])
    with pytest.raises(SystemExit, match="already exists"):
        main([str(folder), str(tmp_path / "model")])
    main([str(folder), str(tmp_path / "model"), "--overwrite"])
    assert not any(p.name.startswith(".model") for p in tmp_path.iterdir())
