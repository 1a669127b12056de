import torch

from xvector.features.fbank import Fbank
from xvector.inference.embedder import Embedder
from xvector.nets.tdnn import XVector


def _embedder() -> Embedder:
    torch.manual_seed(0)
    net = XVector(in_channels=24, channels=[64, 64, 64, 64, 192], embed_dim=64)
    return Embedder(Fbank(num_mel_bins=24), net).eval()


def test_bf16_autocast_keeps_features_and_pooling_float32():
    embedder = _embedder()
    seen = {}
    embedder.features.register_forward_hook(lambda m, i, o: seen.update(feats=o[0].dtype) and None)
    embedder.net.pooling.register_forward_hook(lambda m, i, o: seen.update(pool=(i[0].dtype, o.dtype)) and None)
    wav, lens = 0.1 * torch.randn(3, 32000), torch.tensor([32000, 24000, 16000])
    with torch.inference_mode():
        ref = embedder(wav, lens)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = embedder(wav, lens)
    assert seen["feats"] == torch.float32  # the front-end ran outside autocast
    assert seen["pool"] == (torch.bfloat16, torch.float32)  # convolutions in bf16, statistics in fp32
    cos = torch.nn.functional.cosine_similarity(got.float(), ref, dim=1)
    assert cos.min() >= 0.999, cos
    assert not torch.equal(got.float(), ref)  # bf16 did run
