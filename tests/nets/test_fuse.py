import pytest
import torch
from torch import nn

from xvector.inference.embed import embed_long
from xvector.nets.ecapa_tdnn import ECAPATDNN
from xvector.nets.etdnn import ETDNN
from xvector.nets.fuse import (
    AffineStatsPooling,
    Int8TDNNLayer,
    batchnorm_affine,
    fold_into_conv,
    inference_net,
    quantize_per_row,
)
from xvector.nets.pooling import AttentiveStatsPooling, StatsPooling
from xvector.nets.tdnn import XVector

SMALL = {"channels": (64, 64, 64, 64, 96), "embed_dim": 32}


def _trained_like(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, as after training; eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2)
            m.running_var.copy_(torch.rand(n, generator=g) * 3 + 0.1)
            m.weight.data.copy_(torch.randn(n, generator=g))  # negative scales too
            m.bias.data.copy_(torch.randn(n, generator=g))
    return net.eval()


def _padded(batch: int = 3, feat: int = 20, lens=(150, 97, 40), seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, feat, max(lens), generator=g)
    for i, n in enumerate(lens):
        x[i, :, n:] = 50.0  # padding must not leak
    return x, torch.tensor(lens)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_batchnorm_affine_is_the_eval_batchnorm():
    bn = _trained_like(nn.Sequential(nn.BatchNorm1d(7)))[0]
    x = torch.randn(4, 7, 11)
    scale, shift = batchnorm_affine(bn)
    torch.testing.assert_close(scale[:, None] * x + shift[:, None], bn(x), rtol=1e-6, atol=1e-6)


def test_fold_into_conv_equals_affine_then_conv():
    torch.manual_seed(0)
    conv = nn.Conv1d(6, 5, kernel_size=3, dilation=2)
    scale, shift = torch.randn(6), torch.randn(6)
    x = torch.randn(2, 6, 30)
    torch.testing.assert_close(fold_into_conv(conv, scale, shift)(x), conv(scale[:, None] * x + shift[:, None]),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unpadded"):
        fold_into_conv(nn.Conv1d(6, 5, 3, padding=1), scale, shift)


@pytest.mark.parametrize("make", [
    lambda: XVector(in_channels=20, **SMALL),
    lambda: ETDNN(in_channels=20, channels=(32,) * 8 + (48,), embed_dim=16),
    lambda: XVector(in_channels=20, pooling=lambda in_channels: AttentiveStatsPooling(in_channels, 16), **SMALL),
], ids=["xvector", "etdnn", "xvector-asp"])
def test_folded_net_equals_trained_net_on_padded_batch(make):
    net = _trained_like(make())
    fused = inference_net(net)
    x, lens = _padded()
    with torch.inference_mode():
        ref, got = net(x, lens), fused(x, lens)
    assert _rel(got, ref) < 1e-5
    assert not any(isinstance(m, nn.BatchNorm1d) for m in fused.frame_layers.modules())
    assert fused.min_frames == net.min_frames and fused.embed_dim == net.embed_dim


def test_affine_pooling_is_exact_for_constant_channels():
    # A dead (constant) channel has variance 0: the floor must apply after the BatchNorm's scale,
    # as in the trained net, not before it.
    bn = _trained_like(nn.Sequential(nn.BatchNorm1d(4)))[0]
    bn.weight.data[:] = torch.tensor([100.0, -3.0, 0.5, 1e3])
    x = torch.randn(2, 4, 30)
    x[:, 0] = 0.0
    x[:, 3] = 2.5
    lens = torch.tensor([30, 17])
    scale, shift = batchnorm_affine(bn)
    got = AffineStatsPooling(scale, shift)(x, lens)
    ref = StatsPooling()(bn(x), lens)  # (B, 8): 4 means, 4 standard deviations
    # Dead channel 0, scale 100: floor after the scale gives sqrt(1e-10) = 1e-5, before it 1e-3;
    # the reference's own rounding of its constant (the shift, ~1e2) is ~1e-5.
    torch.testing.assert_close(got[:, 4], ref[:, 4], rtol=0, atol=1e-4)
    # Elsewhere equal up to the reference's own float32 rounding of values near 2500 (channel 3).
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-3)


def test_folded_net_chunked_long_recording_equals_trained_net():
    from xvector.features.fbank import Fbank
    from xvector.inference.embedder import Embedder, for_inference

    embedder = Embedder(Fbank(num_mel_bins=20), _trained_like(XVector(in_channels=20, **SMALL)))
    wav = torch.randn(16000 * 5)
    with torch.inference_mode():
        ref = embed_long(embedder, wav, chunk_sec=1.0)
        got = embed_long(for_inference(embedder), wav, chunk_sec=1.0)
    assert _rel(got, ref) < 1e-5


def test_quantize_per_row_round_trip_within_half_a_step():
    w = torch.randn(8, 40) * torch.logspace(-3, 2, 8)[:, None]
    q, scale = quantize_per_row(w)
    assert q.dtype == torch.int8 and int(q.abs().max()) == 127
    assert ((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-12).all()


def test_int8_layer_error_within_the_quantization_bound():
    """|int8 - float| per output ≤ the worst case of its two roundings (ReLU is 1-Lipschitz):

    ½·s_x·Σ|W_o| (activations) + ½·s_w[o]·Σ|x| (weights) + ¼·s_x·s_w[o]·K (their product).
    """
    torch.manual_seed(0)
    conv = nn.Conv1d(16, 24, kernel_size=3, dilation=2)
    x = torch.relu(torch.randn(2, 16, 50))  # ReLU outputs, as the layer sees
    layer = Int8TDNNLayer(conv)
    got = layer(x.transpose(1, 2).contiguous(), None).transpose(1, 2)  # (B, C_out, T')
    ref = torch.relu(conv(x))
    s_x = x.abs().amax((1, 2)) / 127  # (B,) per utterance
    s_w = layer.weight_scale  # (C_out,)
    taps = x.unfold(2, 5, 1)[..., ::2]  # (B, C_in, T', 3): the dilated windows
    sum_x = taps.abs().sum((1, 3))  # (B, T')
    k = 16 * 3
    bound = (0.5 * s_x[:, None, None] * conv.weight.abs().sum((1, 2))[None, :, None]
             + 0.5 * s_w[None, :, None] * sum_x[:, None, :] + 0.25 * s_x[:, None, None] * s_w[None, :, None] * k)
    err = (got - ref).abs()
    assert (err <= bound * (1 + 1e-4) + 1e-6).all()
    assert err.max() > 0  # it did quantize


def test_int8_net_close_to_float32_and_independent_of_batch():
    net = _trained_like(XVector(in_channels=20, **SMALL))
    q = inference_net(net, "int8")
    x, lens = _padded()
    with torch.inference_mode():
        ref, got = net(x, lens), q(x, lens)
        alone = torch.cat([q(x[i : i + 1, :, :n], lens[i : i + 1]) for i, n in enumerate(lens.tolist())])
    cos = torch.nn.functional.cosine_similarity(got, ref)
    assert cos.min() > 0.999
    assert _rel(got, alone) < 1e-4  # the activation scale is the utterance's own, not the batch's
    assert sum(isinstance(m, Int8TDNNLayer) for m in q.modules()) == 4  # all but the first frame layer


def test_other_nets_pass_through_and_refuse_int8():
    ecapa = ECAPATDNN(in_channels=20, channels=(32, 32, 32, 32, 96), se_channels=8, attention_channels=8, embed_dim=16).eval()
    assert inference_net(ecapa) is ecapa
    with pytest.raises(ValueError, match="int8 inference supports TDNN"):
        inference_net(ecapa, "int8")
    with pytest.raises(ValueError, match="precision='fp8'"):
        inference_net(XVector(in_channels=20, **SMALL).eval(), "fp8")


def test_frame_stack_refuses_float_layers_after_int8_ones():
    from xvector.nets.fuse import FoldedTDNNLayer, FrameStack

    conv = nn.Conv1d(8, 8, 3)
    with pytest.raises(ValueError, match="float layers must come before"):
        FrameStack([Int8TDNNLayer(conv), FoldedTDNNLayer(conv)])
