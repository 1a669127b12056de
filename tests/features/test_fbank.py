"""Parity of the batched Kaldi front-end with torchaudio.compliance.kaldi, one utterance at a time."""

import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from xvector.features.fbank import Fbank, num_frames

# float32 log-mel values are O(10); torchaudio computes |FFT| then squares, we square re/im:
# the two differ by rounding only. Near-silent bins (log of ~eps) are excluded by the signal.
ATOL, RTOL = 2e-3, 1e-4


def _batch(lens, seed=0):
    g = torch.Generator().manual_seed(seed)
    wav = torch.zeros(len(lens), max(lens))
    for i, n in enumerate(lens):
        wav[i, :n] = 0.3 * torch.randn(n, generator=g)
    return wav, torch.tensor(lens)


@pytest.mark.parametrize("num_mel_bins", [24, 80])
def test_fbank_matches_torchaudio_per_utterance(num_mel_bins):
    wav, lens = _batch([16000, 12345, 4000])
    fbank = Fbank(num_mel_bins=num_mel_bins, cmn="none", dither=0.0).eval()
    feats, frame_lens = fbank(wav, lens)
    for i, n in enumerate(lens.tolist()):
        ref = kaldi.fbank(wav[i : i + 1, :n] * 32768, num_mel_bins=num_mel_bins, dither=0.0, energy_floor=0.0)
        assert frame_lens[i] == ref.shape[0]
        torch.testing.assert_close(feats[i, : ref.shape[0]], ref, atol=ATOL, rtol=RTOL)


def test_fbank_options_match_torchaudio():
    wav, lens = _batch([8000])
    fbank = Fbank(num_mel_bins=40, low_freq=50, high_freq=-400, frame_shift_ms=15, preemphasis=0.9, cmn="none", dither=0.0)
    ref = kaldi.fbank(
        wav * 32768, num_mel_bins=40, low_freq=50, high_freq=-400, frame_shift=15,
        preemphasis_coefficient=0.9, dither=0.0, energy_floor=0.0,
    )
    torch.testing.assert_close(fbank.eval()(wav, lens)[0][0], ref, atol=ATOL, rtol=RTOL)


def test_utterance_cmn_matches_subtract_mean():
    wav, lens = _batch([16000, 9000])
    feats, _ = Fbank(num_mel_bins=30, cmn="utterance", dither=0.0).eval()(wav, lens)
    ref = kaldi.fbank(wav[1:, :9000] * 32768, num_mel_bins=30, subtract_mean=True, energy_floor=0.0)
    torch.testing.assert_close(feats[1, : ref.shape[0]], ref, atol=ATOL, rtol=RTOL)
    assert feats[1, ref.shape[0]:].abs().max() == 0  # padding frames zeroed


def test_dither_only_in_training():
    wav, lens = _batch([4000])
    fbank = Fbank(num_mel_bins=24, cmn="none")
    a, b = fbank.eval()(wav, lens)[0], fbank.eval()(wav, lens)[0]
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    c = fbank.train()(wav, lens)[0]
    assert not torch.equal(a, c)
    # Kaldi dither is one 16-bit step: a small perturbation of a loud signal.
    torch.testing.assert_close(a, c, atol=0.05, rtol=0.01)


def test_num_frames_snip_edges():
    lens = torch.tensor([399, 400, 559, 560, 16000])
    assert num_frames(lens, 400, 160).tolist() == [0, 1, 1, 2, 98]
