import torch

from xvector.nets.etdnn import ETDNN


def _hand_count(feat_dim: int) -> int:
    """E-TDNN of Snyder et al. 2019, Table 1, by hand: affine weights + biases, BatchNorm scale + shift.

    No published parameter total was found for this net, so the test checks the table's layer
    sizes written out here.
    """
    bn = lambda c: 2 * c  # noqa: E731
    frame = [
        (feat_dim * 5, 512),  # frame1 [t-2, t+2]
        (512, 512),  # frame2 {t}
        (512 * 3, 512),  # frame3 {t-2, t, t+2}
        (512, 512),  # frame4 {t}
        (512 * 3, 512),  # frame5 {t-3, t, t+3}
        (512, 512),  # frame6 {t}
        (512 * 3, 512),  # frame7 {t-4, t, t+4}
        (512, 512),  # frame8 {t}
        (512, 1500),  # frame9 {t}
    ]
    total = sum(fan_in * out + out + bn(out) for fan_in, out in frame)
    total += 3000 * 512 + 512  # segment10 affine (the embedding)
    total += bn(512) + 512 * 512 + 512 + bn(512)  # relu-bn, segment11 affine, relu-bn
    return total


def test_parameter_count_matches_hand_count():
    for feat_dim in (23, 80):
        assert sum(p.numel() for p in ETDNN(in_channels=feat_dim).parameters()) == _hand_count(feat_dim)
    assert _hand_count(23) == 6_052_756  # worked total, to catch a formula that drifts with the code


def test_layout_context_and_shapes():
    net = ETDNN(in_channels=30)
    convs = [layer.conv for layer in net.frame_layers]
    assert [c.kernel_size[0] for c in convs] == [5, 1, 3, 1, 3, 1, 3, 1, 1]
    assert [c.dilation[0] for c in convs] == [1, 1, 2, 1, 3, 1, 4, 1, 1]
    assert net.context == 22 and net.min_frames == 23  # the paper's total context of 23 frames
    emb = net(torch.randn(2, 30, 40), torch.tensor([40, 23]))
    assert emb.shape == (2, 512) and net.classifier_input(emb).shape == (2, 512) and net.head_in_dim == 512


def test_padded_batch_equals_single_utterances():
    torch.manual_seed(0)
    net = ETDNN(in_channels=20, channels=(32,) * 8 + (64,), embed_dim=16, segment_dims=()).eval()
    lens = [90, 41, 23]
    feats = torch.randn(3, 20, 90)
    for i, n in enumerate(lens):
        feats[i, :, n:] = 1e3
    batched = net(feats, torch.tensor(lens))
    for i, n in enumerate(lens):
        torch.testing.assert_close(batched[i : i + 1], net(feats[i : i + 1, :, :n]), atol=1e-5, rtol=1e-5)
