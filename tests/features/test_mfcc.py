import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from xvector.features.mfcc import MFCC

ATOL, RTOL = 2e-3, 1e-4


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_ceps=13, num_mel_bins=23, use_energy=True),
        dict(num_ceps=30, num_mel_bins=30, low_freq=20, high_freq=7600, use_energy=True),  # Kaldi VoxCeleb v2
        dict(num_ceps=20, num_mel_bins=40, cepstral_lifter=0.0, use_energy=False),
    ],
)
def test_mfcc_matches_torchaudio(kwargs):
    g = torch.Generator().manual_seed(1)
    wav = 0.2 * torch.randn(2, 12000, generator=g)
    wav[1, 7000:] = 0
    lens = torch.tensor([12000, 7000])
    feats, frame_lens = MFCC(cmn="none", dither=0.0, **kwargs).eval()(wav, lens)
    for i, n in enumerate(lens.tolist()):
        ref = kaldi.mfcc(wav[i : i + 1, :n] * 32768, dither=0.0, energy_floor=0.0, **kwargs)
        assert frame_lens[i] == ref.shape[0]
        torch.testing.assert_close(feats[i, : ref.shape[0]], ref, atol=ATOL, rtol=RTOL)


def test_mfcc_rejects_more_ceps_than_bins():
    with pytest.raises(ValueError, match="num_ceps"):
        MFCC(num_ceps=40, num_mel_bins=30)
