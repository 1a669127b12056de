import pytest
import torch
from torchaudio.functional import sliding_window_cmn

from xvector.features.normalize import CMN, sliding_cmn, utterance_cmn


@pytest.mark.parametrize("window", [300, 7, 8])
def test_sliding_cmn_matches_torchaudio_reference(window):
    g = torch.Generator().manual_seed(0)
    lens = [700, 250, 5, 1]
    feats = torch.randn(len(lens), max(lens), 6, generator=g, dtype=torch.float64)
    out = sliding_cmn(feats, torch.tensor(lens), window)
    for i, n in enumerate(lens):
        ref = sliding_window_cmn(feats[i, :n], cmn_window=window, center=True)
        torch.testing.assert_close(out[i, :n], ref.reshape(n, -1), atol=1e-10, rtol=1e-10)
        assert out[i, n:].abs().max() == 0 if n < max(lens) else True


def test_utterance_cmn_ignores_padding():
    feats = torch.randn(1, 10, 3)
    padded = torch.cat([feats, 100 * torch.ones(1, 5, 3)], 1)
    a = utterance_cmn(feats, torch.tensor([10]))
    b = utterance_cmn(padded, torch.tensor([10]))
    torch.testing.assert_close(a, b[:, :10])
    torch.testing.assert_close(a.mean(1), torch.zeros(1, 3), atol=1e-6, rtol=0)


def test_cmn_rejects_unknown_mode():
    with pytest.raises(ValueError, match="CMN mode"):
        CMN("global")
