import pytest
import torch

from xvector.nets.speechbrain_xvector import SpeechBrainXVector


def test_parameter_count_of_spkrec_xvect_layout():
    """spkrec-xvect-voxceleb's embedding_model (Xvector, 24-dim input): 4.21 M, as SpeechBrain's own module."""
    n = sum(p.numel() for p in SpeechBrainXVector(in_channels=24).parameters())
    assert n == 4_211_604
    sb = pytest.importorskip("speechbrain.lobes.models.Xvector")
    assert n == sum(p.numel() for p in sb.Xvector(in_channels=24).parameters())


def test_padded_batch_equals_single_utterances_and_pooling_offsets():
    torch.manual_seed(0)
    net = SpeechBrainXVector(in_channels=12, channels=(32, 32, 32, 32, 48), embed_dim=8).eval()
    lens = [60, 31, net.min_frames]
    feats = torch.randn(3, 12, 60)
    for i, n in enumerate(lens):
        feats[i, :, n:] = 1e3
    with torch.no_grad():
        batched = net(feats, torch.tensor(lens))
        for i, n in enumerate(lens):
            torch.testing.assert_close(batched[i : i + 1], net(feats[i : i + 1, :, :n]), atol=1e-5, rtol=1e-5)
        # the embedding layer sees mean + 5e-5 and the sample std + 1e-5
        x = feats[:1, :, :60]
        for layer in net.frame_layers:
            x = layer(x)
        stats = torch.cat([x.mean(-1) + 5e-5, x.std(-1) + 1e-5], -1)
        torch.testing.assert_close(net(feats[:1]), net.embedding(stats), atol=1e-5, rtol=1e-5)


def test_too_short_input_is_an_error():
    net = SpeechBrainXVector(in_channels=12, channels=(32, 32, 32, 32, 48), embed_dim=8)
    assert net.min_frames == 4  # reflection needs more frames than the widest pad (3: k=3, dilation 3)
    with pytest.raises(ValueError, match="at least"):
        net(torch.randn(1, 12, net.min_frames - 1))
