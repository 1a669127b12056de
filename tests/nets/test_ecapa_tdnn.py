import pytest
import torch

from xvector.nets.ecapa_tdnn import ECAPATDNN, Res2Conv


def _hand_count(feat_dim: int, c: int, mfa: int = 1536, scale: int = 8, se: int = 128, att: int = 128, emb: int = 192) -> int:
    """ECAPA-TDNN of Desplanques et al. 2020 (Fig. 2) by hand: conv weights + biases, BN scale + shift."""
    bn = lambda n: 2 * n  # noqa: E731
    w = c // scale
    first = feat_dim * 5 * c + c + bn(c)  # Conv1D+ReLU+BN, k=5
    block = 2 * (c * c + c + bn(c))  # the two k=1 Conv1D+ReLU+BN
    block += (scale - 1) * (w * w * 3 + w + bn(w))  # Res2 groups, k=3
    block += (c * se + se) + (se * c + c)  # SE bottleneck
    mfa_layer = 3 * c * mfa + mfa  # Conv1D+ReLU, k=1
    attention = (3 * mfa * att + att) + (att * mfa + mfa)  # W on [h; mean; std], then v per channel
    head = bn(2 * mfa) + (2 * mfa * emb + emb) + bn(emb)  # BN, FC + BN
    return first + 3 * block + mfa_layer + attention + head


@pytest.mark.parametrize("c,published", [(512, 6.2e6), (1024, 14.7e6)])
def test_parameter_count_matches_paper(c, published):
    """The paper's Table 2 gives 6.2M (C=512) and 14.7M (C=1024) for 80-dim input.

    It rounds to 0.1M, so the tolerance is half of that (±0.05M). Its counts exclude the
    AAM-softmax classifier (5994 × 192 = 1.15M would not fit the tolerance), so the net here is
    counted without a head. The exact count is also checked against the hand count.
    """
    n = sum(p.numel() for p in ECAPATDNN(in_channels=80, channels=(c, c, c, c, 1536)).parameters())
    assert n == _hand_count(80, c)
    assert abs(n - published) <= 0.05e6
    assert _hand_count(80, 512) == 6_191_104 and _hand_count(80, 1024) == 14_657_472  # worked totals


def test_shapes_and_head_input():
    net = ECAPATDNN(in_channels=24, channels=(32, 32, 32, 32, 96), se_channels=8, attention_channels=8, embed_dim=16)
    emb = net(torch.randn(3, 24, 50), torch.tensor([50, 20, 1]))
    assert emb.shape == (3, 16) and net.head_in_dim == 16 and net.min_frames == 1
    assert torch.equal(net.classifier_input(emb), emb)
    seg = ECAPATDNN(in_channels=24, channels=(32, 32, 32, 32, 96), embed_dim=16, segment_dims=(8,))
    assert seg.classifier_input(seg(torch.randn(2, 24, 30))).shape == (2, 8) and seg.head_in_dim == 8
    assert [b.res2.convs[0].conv.dilation[0] for b in net.blocks] == [2, 3, 4]


def test_padded_batch_equals_single_utterances():
    torch.manual_seed(0)
    net = ECAPATDNN(in_channels=20, channels=(64, 64, 64, 64, 192), se_channels=16, attention_channels=16, embed_dim=32)
    net.train()
    net(torch.randn(4, 20, 80))  # move BatchNorm running statistics off their initial values
    net.eval()
    lens = [120, 73, 9, 1]
    feats = torch.randn(4, 20, 120)
    for i, n in enumerate(lens):
        feats[i, :, n:] = 1e3  # garbage in the padding must not leak through the same-padded convs
    batched = net(feats, torch.tensor(lens))
    for i, n in enumerate(lens):
        torch.testing.assert_close(batched[i : i + 1], net(feats[i : i + 1, :, :n]), atol=1e-5, rtol=1e-5)


def test_res2_first_group_passes_through():
    conv = Res2Conv(16, kernel_size=3, dilation=2, scale=4)
    x = torch.randn(1, 16, 10)
    assert torch.equal(conv(x)[:, :4], x[:, :4])


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="same channels"):
        ECAPATDNN(channels=(64, 64, 32, 64, 192))
    with pytest.raises(ValueError, match="divisible by scale"):
        ECAPATDNN(channels=(60, 60, 60, 60, 180))
    with pytest.raises(ValueError, match="odd"):
        ECAPATDNN(kernel_sizes=(5, 2, 3, 3, 1))
    with pytest.raises(ValueError, match="one entry per layer"):
        ECAPATDNN(channels=(64, 64, 64, 192), kernel_sizes=(5, 3, 3, 3, 1))


def test_unpadded_batch_without_lengths_is_the_same_forward():
    """The training step passes ``lengths=None`` for its fixed-size crops, skipping the masks:
    the same embeddings and gradients as with every length given as full."""
    torch.manual_seed(0)
    net = ECAPATDNN(in_channels=20, channels=(64, 64, 64, 64, 192), se_channels=16, attention_channels=16, embed_dim=32)
    feats = torch.randn(4, 20, 60)
    full = net(feats, torch.full((4,), 60))
    free = net(feats, None)
    torch.testing.assert_close(free, full, rtol=1e-5, atol=1e-6)
    grads = [torch.autograd.grad(e.square().sum(), list(net.parameters())) for e in (full, free)]
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
