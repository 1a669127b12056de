import pytest
import torch

from xvector.nets.dtdnn import DTDNN, DenseTDNNBlock
from xvector.nets.pooling import UnbiasedStatsPooling


def _hand_count(feat_dim: int = 30, emb: int = 512, init: int = 128, growth: int = 64, bn_size: int = 2,
                layers=(6, 12), kernel_sizes=(3, 3)) -> int:
    """D-TDNN (Yu & Li 2020, Table 1) by hand: weights, biases, BN scale + shift."""
    bn = lambda n: 2 * n  # noqa: E731
    total = feat_dim * init * 5 + init + bn(init)  # TDNN layer k=5 with bias, BN
    c, bneck = init, bn_size * growth
    for n, k in zip(layers, kernel_sizes):
        for i in range(n):
            c_in = c + i * growth
            total += bn(c_in) + c_in * bneck + bn(bneck) + bneck * growth * k  # BN-ReLU-1x1, BN-ReLU-conv(k)
        c += n * growth
        total += bn(c) + c * (c // 2)  # transition
        c //= 2
    return total + 2 * c * emb + emb  # FC with bias + BN without scale/shift


def test_parameter_count_matches_paper():
    """The paper's Table 3 gives 2.8M for D-TDNN (30-dim MFCC input, 512-dim embedding, no classifier)."""
    n = sum(p.numel() for p in DTDNN(in_channels=30).parameters())
    assert n == _hand_count() == 2_822_912
    assert abs(n - 2.8e6) <= 0.05e6  # the paper rounds to 0.1M


def test_shapes_growth_and_head_input():
    net = DTDNN(in_channels=24, init_channels=32, growth=8, block_layers=(2, 3), embed_dim=16)
    assert [b.out_channels for b in net.blocks] == [32 + 2 * 8, 24 + 3 * 8]
    emb = net.eval()(torch.randn(3, 24, 30), torch.tensor([30, 12, 1]))
    assert emb.shape == (3, 16) and net.head_in_dim == 16 and torch.equal(net.classifier_input(emb), emb)
    block = DenseTDNNBlock(2, in_channels=4, growth=3, bottleneck=6, kernel_size=3, dilation=1)
    x = torch.randn(1, 4, 10)
    assert torch.equal(block(x)[:, :4], x)  # a dense block keeps its input as its first channels


def test_padded_batch_equals_single_utterances():
    torch.manual_seed(0)
    net = DTDNN(in_channels=20, init_channels=32, growth=16, block_layers=(3, 4), embed_dim=32)
    net.train()
    net(torch.randn(4, 20, 80))  # move BatchNorm running statistics off their initial values
    net.eval()
    lens = [120, 73, 9, 2, 1]
    feats = torch.randn(len(lens), 20, 120)
    for i, n in enumerate(lens):
        feats[i, :, n:] = 1e3
    with torch.no_grad():
        batched = net(feats, torch.tensor(lens))
        for i, n in enumerate(lens):
            torch.testing.assert_close(batched[i : i + 1], net(feats[i : i + 1, :, :n]), atol=1e-5, rtol=1e-5)


def test_unbiased_pooling_matches_torch_std_masked():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 30)
    lens = torch.tensor([30, 7, 1])
    out = UnbiasedStatsPooling(eps=1e-7)(x, lens)
    for i, n in enumerate(lens.tolist()):
        std = (x[i, :, :n].var(-1, unbiased=True) + 1e-7).sqrt() if n > 1 else torch.full((5,), 1e-7).sqrt()
        torch.testing.assert_close(out[i], torch.cat([x[i, :, :n].mean(-1), std]), atol=1e-6, rtol=1e-6)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="one entry per dense block"):
        DTDNN(block_layers=(6, 12), dilations=(1,))
    with pytest.raises(ValueError, match="odd"):
        DTDNN(kernel_sizes=(3, 2))
