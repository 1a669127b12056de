import pytest
import torch

from xvector.features.speechbrain_fbank import SpeechBrainFbank, mel_filters


def test_padded_batch_equals_each_utterance_alone():
    torch.manual_seed(0)
    wav = 0.1 * torch.randn(3, 20000)
    lens = torch.tensor([20000, 12345, 800])
    wav[1, 12345:] = 5.0  # the batch padding must not enter the frames, the dB maximum or the mean
    wav[2, 800:] = -3.0
    feats, frame_lens = SpeechBrainFbank(num_mel_bins=40)(wav, lens)
    assert frame_lens.tolist() == [126, 78, 6]
    for i, n in enumerate(lens.tolist()):
        alone, _ = SpeechBrainFbank(num_mel_bins=40)(wav[i : i + 1, :n])
        torch.testing.assert_close(feats[i, : frame_lens[i]], alone[0], atol=1e-4, rtol=1e-5)
        assert torch.all(feats[i, frame_lens[i] :] == 0)


def test_mel_filters_are_triangles_peaking_at_their_centres():
    banks = mel_filters(10, 400, 16000, 0.0, 8000.0)  # (201, 10)
    assert banks.shape == (201, 10) and float(banks.max()) <= 1.0 and float(banks.min()) >= 0.0
    assert (banks.argmax(0)[1:] > banks.argmax(0)[:-1]).all()  # centres increase


@pytest.mark.parametrize("n_mels", [24, 80])
def test_equals_speechbrains_fbank_and_sentence_norm(n_mels):
    sbf = pytest.importorskip("speechbrain.lobes.features")
    from speechbrain.processing.features import InputNormalization

    torch.manual_seed(1)
    wav = 0.1 * torch.randn(1, 23457)
    ref = InputNormalization(norm_type="sentence", std_norm=False)(sbf.Fbank(n_mels=n_mels)(wav), torch.ones(1))
    ours, _ = SpeechBrainFbank(num_mel_bins=n_mels)(wav)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-5)


def test_min_samples_and_bad_window():
    fb = SpeechBrainFbank()
    assert fb.min_samples(5) == 640 and int(fb.frame_lens(torch.tensor([640]))) == 5
    with pytest.raises(ValueError, match="longer than n_fft"):
        SpeechBrainFbank(win_length_ms=30)
