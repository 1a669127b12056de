"""ONNX and TorchScript export of the nets beyond the x-vector: parity with eager PyTorch.

Each net is built small, with BatchNorm statistics moved off their initial values, behind the
Kaldi Fbank front-end, exported by :func:`xvector.inference.graph.export_embedder` and run on
lengths other than the export example's, alone and as one padded batch (|Δ| < 1e-4, as
``tests/cli/test_export.py`` holds the x-vector to). The ONNX cases are ``slow``.
"""

import numpy as np
import pytest
import torch

from xvector.features.fbank import Fbank
from xvector.features.speechbrain_fbank import SpeechBrainFbank
from xvector.inference.embedder import Embedder
from xvector.inference.graph import export_embedder
from xvector.nets.campp import CAMPlusPlus
from xvector.nets.dtdnn import DTDNN
from xvector.nets.ecapa_chained import ChainedECAPA
from xvector.nets.speechbrain_xvector import SpeechBrainXVector

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")

NETS = {
    "campp": lambda f: CAMPlusPlus(in_channels=f, fcm_channels=8, fcm_blocks=(1, 1), init_channels=32, growth=8,
                                   block_layers=(1, 2, 1), seg_len=20, embed_dim=16),
    "dtdnn": lambda f: DTDNN(in_channels=f, init_channels=32, growth=8, block_layers=(2, 3), embed_dim=16),
    # imported-model layouts, behind SpeechBrain's front-end (reflect padding by index gathers)
    "ecapa_speechbrain": lambda f: ChainedECAPA(in_channels=f, channels=(32, 32, 32, 32, 96), se_channels=8,
                                                attention_channels=8, embed_dim=16),
    "xvector_speechbrain": lambda f: SpeechBrainXVector(in_channels=f, channels=(32, 32, 32, 32, 64), embed_dim=16),
}


def _embedder(name: str) -> Embedder:
    torch.manual_seed(0)
    features = SpeechBrainFbank(num_mel_bins=24) if name.endswith("speechbrain") else Fbank(num_mel_bins=24)
    embedder = Embedder(features, NETS[name](24))
    embedder.train()
    with torch.no_grad():
        embedder(0.1 * torch.randn(4, 16000))  # BatchNorm statistics off their initial values
    return embedder.eval()


def _inputs():
    gen = torch.Generator().manual_seed(7)
    singles = [0.1 * torch.randn(n, generator=gen) for n in (4000, 9000, 16000 * 3 + 123)]
    lens = torch.tensor([len(w) for w in singles])
    batch = torch.zeros(len(singles), int(lens.max()))
    for i, w in enumerate(singles):
        batch[i, : len(w)] = w
    return singles, batch, lens


# ONNX export takes 15-30 s per net on 2 cores (torch.export tracing): slow-marked; CI runs them.
@pytest.mark.parametrize("fmt", [pytest.param("onnx", marks=pytest.mark.slow), "torchscript"])
@pytest.mark.parametrize("name", sorted(NETS))
def test_export_parity(name, fmt, tmp_path):
    embedder = _embedder(name)
    path = export_embedder(embedder, tmp_path / f"{name}.{fmt}", fmt)
    singles, batch, lens = _inputs()
    with torch.no_grad():
        ref = np.stack([embedder(w[None], torch.tensor([len(w)]))[0].numpy() for w in singles])
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        run = lambda w, n: sess.run(None, {"wav": w.numpy(), "wav_lens": n.numpy()})[0]  # noqa: E731
    else:
        scripted = torch.jit.load(str(path))
        run = lambda w, n: scripted(w, n).numpy()  # noqa: E731
    with torch.no_grad():
        for w, r in zip(singles, ref):
            np.testing.assert_allclose(run(w[None], torch.tensor([len(w)]))[0], r, atol=1e-4, rtol=0)
        np.testing.assert_allclose(run(batch, lens), ref, atol=1e-4, rtol=0)
