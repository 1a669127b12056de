import pytest
import torch
import torch.nn.functional as F

from xvector.nets.campp import CAMLayer, CAMPlusPlus, segment_means


def _hand_count(feat_dim: int = 80, emb: int = 512, m: int = 32, init: int = 128, growth: int = 32,
                bn_size: int = 4, layers=(12, 24, 16)) -> int:
    """CAM++ (Wang et al. 2023, 3D-Speaker's CAMPPlus) by hand: weights, biases, BN scale + shift."""
    bn = lambda n: 2 * n  # noqa: E731
    fcm = 9 * m + bn(m)  # Conv2D 1 -> m, 3×3, no bias
    block2d = 2 * (9 * m * m + bn(m))  # two 3×3 convs + BN
    fcm += 4 * block2d + 2 * (m * m + bn(m))  # 2 stages × 2 blocks; the first of each stage has a 1×1 shortcut
    fcm += 9 * m * m + bn(m)  # the last stride-(2, 1) conv
    freq = feat_dim // 8
    total = fcm + (m * freq) * init * 5 + bn(init)  # stride-2 TDNN layer, no bias
    c, bneck = init, bn_size * growth
    for n in layers:
        for i in range(n):
            c_in = c + i * growth
            total += bn(c_in) + c_in * bneck + bn(bneck)  # BN-ReLU-Conv1x1 (no bias), BN
            total += bneck * growth * 3  # CAM: the context conv (k=3, no bias)
            total += (bneck * bneck // 2 + bneck // 2) + (bneck // 2 * growth + growth)  # CAM's mask net
        c += n * growth
        total += bn(c) + c * (c // 2)  # transition BN-ReLU-Conv1x1 (no bias)
        c //= 2
    return total + bn(c) + 2 * c * emb  # BN-ReLU, FC (no bias) + BN without scale/shift


def test_parameter_count_matches_paper():
    """The paper (and 3D-Speaker's README) gives 7.18M for 80-dim fbank and a 512-dim embedding.

    That is the embedding net without its classifier: the AAM head over VoxCeleb2's 5994 speakers
    (5994 × 512 = 3.07M) would make it 10.25M. The exact count is also the hand count.
    """
    n = sum(p.numel() for p in CAMPlusPlus(in_channels=80, embed_dim=512).parameters())
    assert n == _hand_count() == 7_176_224
    assert abs(n - 7.18e6) <= 0.005e6  # the paper rounds to 0.01M


def test_shapes_and_head_input():
    net = CAMPlusPlus(in_channels=24, fcm_channels=8, init_channels=32, growth=8, block_layers=(2, 2, 2),
                      embed_dim=16).eval()
    assert net.fcm.out_channels == 8 * 3  # 24 -> 12 -> 6 -> 3 frequency bins
    emb = net(torch.randn(3, 24, 41), torch.tensor([41, 20, 1]))
    assert emb.shape == (3, 16) and net.head_in_dim == 16 and torch.equal(net.classifier_input(emb), emb)
    seg = CAMPlusPlus(in_channels=20, fcm_channels=8, init_channels=32, growth=8, block_layers=(1, 1, 1),
                      embed_dim=16, segment_dims=(8,))
    assert seg.classifier_input(seg(torch.randn(2, 20, 30))).shape == (2, 8) and seg.head_in_dim == 8
    assert seg.fcm.out_channels == 8 * 3  # 20 -> 10 -> 5 -> 3


def _randomise_batchnorms(net: torch.nn.Module) -> None:
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.3, 0.3)


def test_padded_batch_equals_single_utterances():
    torch.manual_seed(0)
    net = CAMPlusPlus(in_channels=40, fcm_channels=16, init_channels=64, growth=16, block_layers=(3, 4, 3),
                      seg_len=20, embed_dim=32).eval()
    _randomise_batchnorms(net)
    lens = [250, 173, 41, 9, 2, 1]  # odd and even lengths through the stride-2 layer; several segments
    feats = torch.randn(len(lens), 40, 250)
    for i, n in enumerate(lens):
        feats[i, :, n:] = 1e3  # garbage in the padding must not leak through the convolutions
    with torch.no_grad():
        batched = net(feats, torch.tensor(lens))
        for i, n in enumerate(lens):
            torch.testing.assert_close(batched[i : i + 1], net(feats[i : i + 1, :, :n]), atol=1e-5, rtol=1e-5)


def test_segment_means_known_answer_and_masking():
    x = torch.tensor([[[1.0, 3.0, 5.0, 7.0, 9.0, 100.0, 100.0]]])  # last two frames are padding
    mask = torch.tensor([[[1.0, 1, 1, 1, 1, 0, 0]]])
    torch.testing.assert_close(segment_means(x, mask, 2), torch.tensor([[[2.0, 6.0, 9.0, 0.0]]]))
    torch.testing.assert_close(segment_means(x[..., :5], None, 2), torch.tensor([[[2.0, 6.0, 9.0]]]))


def test_cam_layer_equals_per_frame_formula():
    """The per-segment gate equals 3D-Speaker's CAMLayer computed per frame (its formula, written here)."""
    torch.manual_seed(0)
    cam = CAMLayer(16, 8, kernel_size=3, dilation=2, seg_len=10)
    x = torch.randn(2, 16, 37)
    y = F.conv1d(x, cam.local.weight, padding=2, dilation=2)
    seg = F.avg_pool1d(x, 10, 10, ceil_mode=True)
    seg = seg.unsqueeze(-1).expand(*seg.shape, 10).reshape(2, 16, -1)[..., :37]
    context = x.mean(-1, keepdim=True) + seg
    gate = torch.sigmoid(cam.expand(torch.relu(cam.reduce(context))))
    torch.testing.assert_close(cam(x), y * gate, atol=1e-6, rtol=1e-6)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="one entry per dense block"):
        CAMPlusPlus(block_layers=(2, 2), kernel_sizes=(3, 3, 3))
    with pytest.raises(ValueError, match="odd"):
        CAMPlusPlus(kernel_sizes=(3, 4, 3))
    with pytest.raises(ValueError, match="at least 1 frame"):
        CAMPlusPlus(in_channels=24)(torch.randn(1, 24, 0))
