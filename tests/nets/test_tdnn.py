import pytest
import torch

from xvector.nets.tdnn import TDNNLayer, XVector


def _published_param_count(feat_dim: int) -> int:
    """Snyder et al. 2018 topology by hand: affine weights + biases, and BatchNorm scale + shift."""
    bn = lambda c: 2 * c  # noqa: E731
    frame = [
        (feat_dim * 5, 512),  # frame1: {t-2..t+2}
        (512 * 3, 512),  # frame2: {t-2, t, t+2}
        (512 * 3, 512),  # frame3: {t-3, t, t+3}
        (512, 512),  # frame4
        (512, 1500),  # frame5
    ]
    total = sum(fan_in * out + out + bn(out) for fan_in, out in frame)
    total += 3000 * 512 + 512  # segment6 affine (the embedding)
    total += bn(512) + 512 * 512 + 512 + bn(512)  # relu-bn, segment7 affine, relu-bn
    return total


@pytest.mark.parametrize("feat_dim", [24, 30])
def test_parameter_count_matches_published_topology(feat_dim):
    net = XVector(in_channels=feat_dim)
    assert sum(p.numel() for p in net.parameters()) == _published_param_count(feat_dim)
    # Worked total for the paper's 24-dim input, to catch a formula that drifts with the code.
    if feat_dim == 24:
        assert _published_param_count(24) == 4_476_308


def test_kernel_and_dilation_layout():
    net = XVector(in_channels=80)
    convs = [layer.conv for layer in net.frame_layers]
    assert [c.weight.shape for c in convs][0] == torch.Size([512, 80, 5])
    assert [c.kernel_size[0] for c in convs] == [5, 3, 3, 1, 1]
    assert [c.dilation[0] for c in convs] == [1, 2, 3, 1, 1]
    assert net.context == 14 and net.min_frames == 15


def test_output_shapes_and_head_input():
    net = XVector(in_channels=24, embed_dim=256, segment_dims=(128,))
    emb = net(torch.randn(3, 24, 100), torch.tensor([100, 60, 15]))
    assert emb.shape == (3, 256)
    assert net.classifier_input(emb).shape == (3, 128) and net.head_in_dim == 128
    no_seg = XVector(in_channels=24, segment_dims=())
    e = no_seg(torch.randn(2, 24, 50))
    assert no_seg.classifier_input(e) is not None and no_seg.head_in_dim == 512


def test_padded_batch_equals_single_utterances():
    torch.manual_seed(0)
    net = XVector(in_channels=20, channels=(64, 64, 64, 64, 128), embed_dim=32).eval()
    lens = [120, 73, 15]
    feats = torch.randn(3, 20, 120)
    for i, n in enumerate(lens):
        feats[i, :, n:] = 1e3  # garbage in the padding must not leak
    batched = net(feats, torch.tensor(lens))
    for i, n in enumerate(lens):
        single = net(feats[i : i + 1, :, :n])
        torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=1e-5)


def test_too_short_input_raises():
    with pytest.raises(ValueError, match="at least 15 frames"):
        XVector(in_channels=24)(torch.randn(1, 24, 10))


def test_tdnn_layer_context():
    layer = TDNNLayer(8, 16, kernel_size=3, dilation=3)
    assert layer(torch.randn(2, 8, 20)).shape == (2, 16, 14) and layer.context == 6


def test_pooling_factory_default_keeps_state_dict_and_attentive_option():
    from functools import partial

    from xvector.nets.pooling import AttentiveStatsPooling, StatsPooling

    default = XVector(in_channels=24)
    explicit = XVector(in_channels=24, pooling=StatsPooling)
    assert list(default.state_dict()) == list(explicit.state_dict())  # checkpoints still load
    assert sum(p.numel() for p in explicit.parameters()) == 4_476_308
    asp = XVector(in_channels=24, pooling=partial(AttentiveStatsPooling, attention_dim=128))
    extra = (1500 * 128 + 128) + (128 + 1)  # W, b; v, k
    assert sum(p.numel() for p in asp.parameters()) == 4_476_308 + extra
    torch.manual_seed(0)
    pooling = partial(AttentiveStatsPooling, attention_dim=8)
    small = XVector(in_channels=20, channels=(32, 32, 32, 32, 64), embed_dim=16, pooling=pooling).eval()
    feats, lens = torch.randn(2, 20, 60), [60, 25]
    feats[1, :, 25:] = 1e3
    batched = small(feats, torch.tensor(lens))
    torch.testing.assert_close(batched[1:], small(feats[1:, :, :25]), atol=1e-5, rtol=1e-5)
