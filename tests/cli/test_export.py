"""xvector-export: model directory with ONNX / TorchScript graphs, parity with eager PyTorch.

Parity tolerance: |Δ| < 1e-4 on every embedding and cosine >= 0.9999, on lengths other than
the export example's and on a padded batch with lengths.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import xvector
from xvector.cli.export import main
from xvector.inference.model_dir import init_checkpoint, tiny_config

ROOT = Path(__file__).resolve().parents[2]
# torch 2.14 deprecates TorchScript (torch.jit.*) in favour of torch.export; it still works.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    ckpt = init_checkpoint(d / "tiny.ckpt", tiny_config(), seed=4)
    scores = d / "scores"
    scores.mkdir()
    (scores / "calibration.json").write_text(json.dumps({"scale": 8.0, "offset": -3.0}))
    (scores / "threshold.json").write_text(json.dumps({"criterion": "eer", "threshold": 0.25, "on": "llr",
                                                       "far": 0.05, "frr": 0.05}))
    main([str(ckpt), str(d / "model"), "--score-dir", str(scores), "--format", "onnx", "--format", "torchscript"])
    return d / "model"


def _inputs():
    gen = torch.Generator().manual_seed(7)
    singles = [0.1 * torch.randn(n, generator=gen) for n in (2640, 9000, 16000 * 3 + 123)]
    lens = torch.tensor([len(w) for w in singles])
    batch = torch.zeros(len(singles), int(lens.max()))
    for i, w in enumerate(singles):
        batch[i, : len(w)] = w
    return singles, batch, lens


def _assert_parity(got: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    cos = (got * ref).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert cos.min() >= 0.9999


def test_export_writes_the_directory(exported):
    names = sorted(p.name for p in exported.iterdir())
    assert names == ["calibration.json", "config.yaml", "embedder.onnx", "embedder.pt",
                     "embedder.torchscript.pt", "info.json", "threshold.json"]
    model = xvector.load_model(exported)
    assert model.calibration == {"scale": 8.0, "offset": -3.0}
    assert model.threshold["threshold"] == 0.25 and model.threshold["criterion"] == "eer"


def test_onnx_parity_variable_lengths_and_padded_batch(exported):
    import onnxruntime as ort

    embedder = xvector.load_model(exported).embedder
    sess = ort.InferenceSession(str(exported / "embedder.onnx"), providers=["CPUExecutionProvider"])
    singles, batch, lens = _inputs()
    with torch.no_grad():
        ref = [embedder(w[None], torch.tensor([len(w)]))[0].numpy() for w in singles]
    for w, r in zip(singles, ref):
        got = sess.run(None, {"wav": w[None].numpy(), "wav_lens": np.array([len(w)], dtype=np.int64)})[0][0]
        _assert_parity(got, r)
    got = sess.run(None, {"wav": batch.numpy(), "wav_lens": lens.numpy()})[0]
    _assert_parity(got, np.stack(ref))


def test_torchscript_parity_variable_lengths_and_padded_batch(exported):
    embedder = xvector.load_model(exported).embedder
    scripted = torch.jit.load(str(exported / "embedder.torchscript.pt"))
    singles, batch, lens = _inputs()
    with torch.no_grad():
        ref = np.stack([embedder(w[None], torch.tensor([len(w)]))[0].numpy() for w in singles])
        for w, r in zip(singles, ref):
            _assert_parity(scripted(w[None], torch.tensor([len(w)]))[0].numpy(), r)
        _assert_parity(scripted(batch, lens).numpy(), ref)


def test_export_refuses_an_existing_dir_with_a_message(exported, tmp_path, capsys):
    for out, message in [(exported, "already exists"), (tmp_path / "new", "checkpoint does not exist")]:
        with pytest.raises(SystemExit) as stop:
            main([str(tmp_path / "whatever.ckpt"), str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 1 and len(err) == 1 and err[0].startswith("xvector-export: ") and message in err[0]


def test_onnx_verify_script_runs_without_torch(exported, tmp_path):
    gen = np.random.default_rng(5)
    a, b = (0.1 * gen.standard_normal((2, 20000))).astype(np.float32)
    sf.write(tmp_path / "a.wav", a, 16000, subtype="FLOAT")
    sf.write(tmp_path / "b.wav", b[:15000], 16000, subtype="FLOAT")
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['onnx_verify', {str(tmp_path / 'a.wav')!r}, {str(tmp_path / 'b.wav')!r},"
        f" '--model', {str(exported)!r}, '--json']\n"
        f"runpy.run_path({str(ROOT / 'scripts' / 'onnx_verify.py')!r}, run_name='__main__')\n"
        "assert 'torch' not in sys.modules and 'xvector' not in sys.modules, 'torch was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = xvector.load_model(exported).verify(tmp_path / "a.wav", tmp_path / "b.wav")
    assert got["score"] == pytest.approx(want.score, abs=1e-4)
    assert got["llr"] == pytest.approx(want.llr, abs=1e-3)
    assert got["decision"] == want.decision and got["on"] == "llr" and got["threshold"] == 0.25
