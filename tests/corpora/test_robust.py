"""Robustness corpora (issue 17, item 2): recording conditions, TTS voices and the corpus layout."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from xvector.corpora import conditions as cond
from xvector.corpora import tts
from xvector.corpora.robust import make_robust_corpus, same_language_trials
from xvector.data.lists import Trial, load_data_dir, read_kaldi_map, read_trials


def _speech(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * rng.standard_normal(len(t)))).astype(np.float32)


def test_level_is_the_active_speech_level_and_silence_does_not_count():
    wav = cond.set_level(_speech(), -30.0)
    padded = np.concatenate([np.zeros(48000, np.float32), wav])
    assert cond.level_dbfs(wav) == pytest.approx(-30.0, abs=0.01)
    assert cond.level_dbfs(padded) == pytest.approx(-30.0, abs=0.3)  # digital silence is not speech
    assert cond.active_power(np.zeros(1000, np.float32)) == 0.0


def test_digital_silence_is_exact_zeros_and_keeps_the_speech():
    rng = np.random.default_rng(1)
    wav = _speech(1.0)
    out = cond.add_digital_silence(wav, rng, lead_sec=(0.2, 0.2), trail_sec=(0.3, 0.3), gaps=2, gap_sec=(0.1, 0.1))
    assert len(out) == len(wav) + int(0.2 * 16000) + int(0.3 * 16000) + 2 * int(0.1 * 16000)
    assert not out[:3200].any() and not out[-4800:].any()
    np.testing.assert_array_equal(out[out != 0], wav[wav != 0])  # speech samples in order, none lost


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_noise_is_added_at_the_snr_asked(beta):
    rng = np.random.default_rng(2)
    wav = _speech()
    noise = cond.colored_noise(len(wav), beta, rng)
    for snr in (0.0, 7.5, 15.0):
        noisy = cond.add_noise(wav, noise, snr)
        measured = 10 * np.log10(cond.active_power(wav) / np.mean((noisy - wav).astype(np.float64) ** 2))
        assert measured == pytest.approx(snr, abs=0.05)


def test_noise_colour_sets_the_spectral_slope():
    rng = np.random.default_rng(3)
    for beta in (0.0, 1.0, 2.0):
        x = cond.colored_noise(2**16, beta, rng)
        f = np.fft.rfftfreq(len(x))[1:]
        p = np.abs(np.fft.rfft(x))[1:] ** 2
        slope = np.polyfit(np.log(f), np.log(p), 1)[0]
        assert slope == pytest.approx(-beta, abs=0.1)


def test_babble_mixes_talkers_at_the_snr():
    rng = np.random.default_rng(4)
    wav = _speech()
    talkers = [_speech(1.5, seed=s) for s in range(4)]
    noisy = cond.add_babble(wav, talkers, 5.0, rng)
    assert 10 * np.log10(cond.active_power(wav) / np.mean((noisy - wav).astype(np.float64) ** 2)) == pytest.approx(5.0, abs=0.05)


def test_channel_keeps_the_level_and_changes_the_spectrum():
    rng = np.random.default_rng(5)
    wav = cond.set_level(_speech(), -25.0)
    out = cond.random_channel(wav, rng)
    assert cond.level_dbfs(out) == pytest.approx(-25.0, abs=0.01)
    assert np.abs(out - wav).mean() > 0.01 * np.abs(wav).mean()


def test_same_language_trials_keep_targets_and_pair_speakers_of_one_language():
    utt2spk = {f"s{s}-u{u}": f"s{s}" for s in range(6) for u in range(3)}
    lang = {"s0": "de", "s1": "de", "s2": "de", "s3": "fi", "s4": "fi", "s5": "sw"}
    utt2lang = {u: lang[s] for u, s in utt2spk.items()}
    trials = [Trial("s0-u0", "s0-u1", True), Trial("s0-u0", "s5-u0", False)]
    same = same_language_trials(trials, utt2spk, utt2lang, 20, seed=0)
    assert [t for t in same if t.target] == [trials[0]]
    non = [t for t in same if not t.target]
    assert len(non) == 20
    assert all(lang[utt2spk[t.enroll]] == lang[utt2spk[t.test]] for t in non)
    assert {lang[utt2spk[t.enroll]] for t in non} == {"de", "fi"}  # sw has one speaker: no pairs


def test_formant_corpus_layout_and_conditions(tmp_path):
    s = make_robust_corpus(tmp_path / "c", voices="formant", n_train_speakers=3, n_train_utts=2, n_eval_speakers=4,
                           n_eval_utts=3, n_langs=2, min_sec=0.6, max_sec=0.8, num_trials=20, num_workers=1, seed=7)
    assert sorted(s["splits"]) == ["dev", "dev_noisy", "test", "test_noisy", "train"]
    root = tmp_path / "c"
    for split in s["splits"]:
        d = load_data_dir(root / split)
        assert set(read_kaldi_map(root / split / "utt2lang")) == set(d.utt2spk)
    clean, noisy = load_data_dir(root / "test"), load_data_dir(root / "test_noisy")
    assert clean.utt2spk == noisy.utt2spk
    assert read_trials(root / "test" / "trials") == read_trials(root / "test_noisy" / "trials")
    trials = read_trials(root / "test" / "trials")
    assert sum(t.target for t in trials) == sum(not t.target for t in trials) == 10
    assert set(load_data_dir(root / "train").utt2spk.values()).isdisjoint(clean.utt2spk.values())
    levels, zeros = [], []
    for utt, path in clean.wavs.items():
        wav, sr = sf.read(path, dtype="float32")
        assert sr == 16000
        levels.append(cond.level_dbfs(wav))
        zeros.append(wav[:800].any() or wav[-800:].any())
        n_wav, _ = sf.read(noisy.wavs[utt], dtype="float32")
        assert len(n_wav) == len(wav) and not np.array_equal(n_wav, wav)
    assert not any(zeros)  # every file starts and ends in digital silence (>= 50 ms)
    assert all(-36.5 < lv < -11.0 for lv in levels) and np.ptp(levels) > 3.0
    assert sum(s["splits"]["test_noisy"]["noise"].values()) == 12
    again = make_robust_corpus(tmp_path / "d", voices="formant", n_train_speakers=3, n_train_utts=2, n_eval_speakers=4,
                               n_eval_utts=3, n_langs=2, min_sec=0.6, max_sec=0.8, num_trials=20, num_workers=2, seed=7)
    assert again["splits"] == s["splits"]  # a function of the seed, whatever the workers
    a, b = (sf.read(p / "wav_noisy" / "test-spk001" / "test-spk001-utt002.wav")[0] for p in (root, tmp_path / "d"))
    np.testing.assert_array_equal(a, b)


def test_tts_needs_espeak_or_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(tts, "espeak_available", lambda: False)
    with pytest.raises(RuntimeError, match="espeak-ng"):
        make_robust_corpus(tmp_path, voices="tts")
    with pytest.raises(ValueError, match="voices"):
        make_robust_corpus(tmp_path, voices="robot")


@pytest.mark.skipif(not tts.espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_tts_voices_speak_with_digital_silence():
    rng = np.random.default_rng(0)
    v = tts.TTSVoice("de", "m3", pitch=40, speed=150)
    wav = tts.synthesize(v, tts.random_text(rng, 6), rng)
    assert wav.dtype == np.float32 and 1.0 < len(wav) / 16000 < 6.0
    assert (wav == 0).mean() > 0.05  # pauses between words are exact zeros
    other = tts.synthesize(tts.TTSVoice("de", "f2", pitch=70, speed=150), tts.random_text(rng, 6), rng)
    assert not np.array_equal(wav[:1000], other[:1000])
