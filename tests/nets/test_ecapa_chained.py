import pytest
import torch

from xvector.nets.ecapa_chained import ChainedECAPA

SMALL = dict(in_channels=20, channels=(64, 64, 64, 64, 192), se_channels=16, attention_channels=16, embed_dim=32)
WESPEAKER = dict(padding_mode="zeros", aggregate_norm=False, attention_norm=False, context_unbiased=True,
                 context_eps=1e-7, var_floor=1e-7, embed_norm=True)


def _randomise(net):
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_parameter_count_of_speechbrains_spkrec_layout():
    """spkrec-ecapa-voxceleb's embedding_model (ECAPA_TDNN, channels 1024 x4 and 3072, 192-dim): 20.77 M,
    the count of SpeechBrain's own module (tests/importers/test_speechbrain.py loads its weights strictly)."""
    net = ChainedECAPA(in_channels=80, channels=(1024, 1024, 1024, 1024, 3072), embed_dim=192)
    n = sum(p.numel() for p in net.parameters())
    assert n == 20_767_552
    sb = pytest.importorskip("speechbrain.lobes.models.ECAPA_TDNN")
    assert n == sum(p.numel() for p in sb.ECAPA_TDNN(80, channels=[1024] * 4 + [3072], lin_neurons=192).parameters())


@pytest.mark.parametrize("options", [{}, WESPEAKER], ids=["speechbrain", "wespeaker"])
def test_padded_batch_equals_single_utterances(options):
    torch.manual_seed(0)
    net = _randomise(ChainedECAPA(**SMALL, **options))
    lens = [120, 73, 9, net.min_frames]
    feats = torch.randn(len(lens), 20, 120)
    for i, n in enumerate(lens):
        feats[i, :, n:] = 1e3
    with torch.no_grad():
        batched = net(feats, torch.tensor(lens))
        for i, n in enumerate(lens):
            torch.testing.assert_close(batched[i : i + 1], net(feats[i : i + 1, :, :n]), atol=1e-5, rtol=1e-5)


def test_shapes_min_frames_and_errors():
    net = ChainedECAPA(**SMALL).eval()
    assert net.min_frames == 5 and ChainedECAPA(**SMALL, padding_mode="zeros").min_frames == 1
    assert net(torch.randn(2, 20, 30)).shape == (2, 32) and net.head_in_dim == 32
    with pytest.raises(ValueError, match="at least 5 frames"):
        net(torch.randn(1, 20, 4))
    with pytest.raises(ValueError, match="same channels"):
        ChainedECAPA(channels=(64, 32, 64, 64, 192))
    with pytest.raises(ValueError, match="divisible by scale"):
        ChainedECAPA(channels=(60, 60, 60, 60, 180))
