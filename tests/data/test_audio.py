"""load_audio / audio_info on bad input: every case a one-line ValueError naming the file."""

import numpy as np
import pytest
import soundfile as sf

from xvector.data.audio import audio_info, load_audio, wav_truncation


def _wav(path, data, rate=16000, **kw):
    sf.write(path, np.asarray(data, dtype=np.float32), rate, **kw)
    return path


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.fixture
def noise():
    return (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)


def test_reads_whole_file_and_crop(tmp_path, noise):
    path = _wav(tmp_path / "a.wav", noise)
    np.testing.assert_allclose(load_audio(path, 16000), noise, atol=1e-4)
    np.testing.assert_allclose(load_audio(path, 16000, 100, 50), noise[100:150], atol=1e-4)
    assert audio_info(path) == (16000, 16000)


@pytest.mark.parametrize("content", [b"", b"hello, this is not audio\n" * 20, b"RIFF\x00\x00"])
def test_empty_non_audio_and_header_only_files(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"bad\.wav: cannot decode audio") as err:
        load_audio(path, 16000)
    assert _one_line(err).startswith(str(path))
    with pytest.raises(ValueError, match=r"bad\.wav: cannot read audio header"):
        audio_info(path)


def test_corrupt_flac(tmp_path, noise):
    data = bytearray(_wav(tmp_path / "a.flac", noise).read_bytes())
    cut = tmp_path / "cut.flac"
    cut.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ValueError, match=r"cut\.flac: cannot decode audio") as err:
        load_audio(cut, 16000)
    _one_line(err)


def test_truncated_wav_reads_what_is_there_and_is_detected(tmp_path, noise):
    data = _wav(tmp_path / "a.wav", noise, subtype="PCM_16").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 2 * 1000])
    # libsndfile silently shortens a truncated wav; wav_truncation (used by the validator) notices.
    assert len(load_audio(cut, 16000)) == 1000
    assert wav_truncation(cut) == (32000, 2000)
    assert wav_truncation(tmp_path / "a.wav") is None


def test_wrong_sample_rate_errors_or_resamples(tmp_path):
    t = np.arange(8000) / 8000
    path = _wav(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), rate=8000)
    with pytest.raises(ValueError, match=r"a\.wav: sample rate 8000 Hz, expected 16000 Hz") as err:
        load_audio(path, 16000)
    _one_line(err)
    up = load_audio(path, 16000, resample=True)
    assert up.dtype == np.float32 and len(up) == 16000
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins: the tone is still at 440 Hz


def test_multichannel_mean_first_or_error(tmp_path):
    stereo = np.stack([np.full(100, 0.5), np.full(100, -0.1)], axis=1)
    path = _wav(tmp_path / "st.wav", stereo)
    np.testing.assert_allclose(load_audio(path, 16000), 0.2, atol=1e-4)  # the default: average
    np.testing.assert_allclose(load_audio(path, 16000, multichannel="first"), 0.5, atol=1e-4)
    with pytest.raises(ValueError, match=r"st\.wav: 2 channels, expected mono") as err:
        load_audio(path, 16000, multichannel="error")
    _one_line(err)
    with pytest.raises(ValueError, match="multichannel must be one of"):
        load_audio(path, 16000, multichannel="sum")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    data = np.zeros(100)
    data[50] = bad
    path = _wav(tmp_path / "nan.wav", data, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"nan\.wav: audio contains NaN or infinite samples") as err:
        load_audio(path, 16000)
    _one_line(err)


def test_all_zero_audio_kept_by_default_refused_on_request(tmp_path):
    path = _wav(tmp_path / "zero.wav", np.zeros(1600))
    assert not load_audio(path, 16000).any()
    with pytest.raises(ValueError, match=r"zero\.wav: all 1600 samples are zero") as err:
        load_audio(path, 16000, reject_silent=True)
    _one_line(err)


def test_missing_file_and_start_past_end(tmp_path, noise):
    with pytest.raises(ValueError, match=r"nope\.wav: cannot decode audio"):
        load_audio(tmp_path / "nope.wav", 16000)
    path = _wav(tmp_path / "a.wav", noise)
    with pytest.raises(ValueError, match=r"a\.wav: no samples"):
        load_audio(path, 16000, start=16000)
