"""Synthetic corpus: determinism, output ranges, valid Kaldi lists, and speaker encoding."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xvector.corpora.synthetic.corpus import (
    apply_channel,
    make_corpus,
    make_trials,
    sample_speaker,
    synthesize_utterance,
)
from xvector.data.lists import load_data_dir, read_kaldi_map, read_spk2utt, read_trials

SR = 16000
TINY = dict(n_train_speakers=3, n_train_utts=2, n_test_speakers=3, n_test_utts=3,
            n_dev_speakers=2, n_dev_utts=2, min_sec=0.5, max_sec=0.9, trials_per_utt=4)
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_synthetic_corpus.py"


def _speaker(seed: int = 0, **changes):
    return dataclasses.replace(sample_speaker(np.random.default_rng(seed)), **changes)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    summary = make_corpus(root / "a", seed=3, num_workers=1, **TINY)
    return root, summary


def _files(root: Path) -> dict[str, bytes]:
    # wav.scp holds absolute paths, so compare it with the corpus root taken out.
    return {str(p.relative_to(root)): p.read_bytes().replace(str(root).encode(), b"ROOT")
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_utterance_is_finite_bounded_and_of_the_asked_length():
    rng = np.random.default_rng(0)
    clean = synthesize_utterance(_speaker(), rng, duration_sec=1.25, sample_rate=SR)
    wav = apply_channel(clean, rng, sample_rate=SR)
    for x in (clean, wav):
        assert x.dtype == np.float32 and x.shape == (20000,)
        assert np.isfinite(x).all() and 0.1 < np.abs(x).max() <= 1.0


def test_same_seed_same_audio_other_seed_differs():
    spk = _speaker(1)
    a, b, c = (synthesize_utterance(spk, np.random.default_rng(s), 1.0) for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    ca, cb = (apply_channel(a, np.random.default_rng(9)) for _ in range(2))
    np.testing.assert_array_equal(ca, cb)
    assert not np.array_equal(ca, apply_channel(a, np.random.default_rng(10)))


def test_too_short_or_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="samples"):
        synthesize_utterance(_speaker(), np.random.default_rng(0), duration_sec=0.01)
    with pytest.raises(ValueError, match="min_sec"):
        make_corpus(tmp_path, **{**TINY, "min_sec": 2.0, "max_sec": 1.0})
    with pytest.raises(ValueError, match="test"):
        make_corpus(tmp_path, **{**TINY, "n_test_speakers": 1})


def _f0_autocorr(x: np.ndarray, sample_rate: int = SR) -> float:
    """Median autocorrelation pitch over the loudest 40 ms frames."""
    frames = np.lib.stride_tricks.sliding_window_view(x, 640)[::320]
    frames = frames[np.sum(frames**2, 1) > 0.2 * np.max(np.sum(frames**2, 1))]
    spec = np.fft.rfft(frames - frames.mean(1, keepdims=True), 2048, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)
    lo, hi = sample_rate // 400, sample_rate // 60
    return float(np.median(sample_rate / (lo + np.argmax(ac[:, lo:hi], axis=1))))


@pytest.mark.parametrize("f0", [100.0, 210.0])
def test_estimated_f0_follows_the_speaker(f0):
    spk = _speaker(2, f0_mean_hz=f0, f0_range_st=1.0, jitter=0.005)
    x = synthesize_utterance(spk, np.random.default_rng(4), duration_sec=2.0)
    assert _f0_autocorr(x) == pytest.approx(f0, rel=0.15)


def test_shorter_vocal_tract_raises_the_spectral_centroid():
    def centroid(seed: int, scale: float) -> float:
        # Pin the static voice-quality shapes, which do not scale with the tract.
        spk = _speaker(seed, formant_scale=scale, nasality=0.0, tilt_db_per_oct=0.0,
                       f0_mean_hz=100.0, breathiness=0.05)
        x = synthesize_utterance(spk, np.random.default_rng(seed + 100), 2.0)
        mag = np.abs(np.fft.rfft(x))
        f = np.fft.rfftfreq(len(x), 1 / SR)
        keep = (f > 200) & (f < 4000)  # the vowel formant region
        return float(np.sum(f[keep] * mag[keep]) / np.sum(mag[keep]))

    ratios = [centroid(seed, 1.15) / centroid(seed, 0.85) for seed in range(3)]
    assert np.mean(ratios) > 1.1 and min(ratios) > 1.0


def test_trials_are_balanced_without_self_or_repeated_pairs():
    utt2spk = {f"s{s}-u{u}": f"s{s}" for s in range(4) for u in range(5)}
    trials = make_trials(utt2spk, np.random.default_rng(0), trials_per_utt=4)
    pairs = [frozenset((e, t)) for e, t, _ in trials]
    assert len(set(pairs)) == len(pairs) and all(len(p) == 2 for p in pairs)
    assert all((utt2spk[e] == utt2spk[t]) == tgt for e, t, tgt in trials)
    n_target = sum(tgt for *_, tgt in trials)
    assert 0.3 < n_target / len(trials) <= 0.5
    assert trials == make_trials(utt2spk, np.random.default_rng(0), trials_per_utt=4)


def test_corpus_lists_are_valid_and_splits_disjoint(corpus):
    root, summary = corpus
    out = root / "a"
    speakers = {}
    for split, n_spk, n_utt in (("train", 3, 2), ("test", 3, 3), ("dev", 2, 2)):
        d = load_data_dir(out / split)  # validates sorting, ids and that every wav exists
        assert len(d.utts) == n_spk * n_utt and len(d.speakers) == n_spk
        for utt, spk in d.utt2spk.items():
            assert utt.startswith(spk + "-") and spk.startswith(split + "-")
        assert all(p.is_absolute() for p in d.wavs.values())
        assert read_spk2utt(out / split / "spk2utt") == {
            s: sorted(u for u in d.utts if d.utt2spk[u] == s) for s in d.speakers}
        speakers[split] = set(d.speakers)
        for p in d.wavs.values():
            info = sf.info(p)
            assert info.samplerate == SR and info.channels == 1 and info.subtype == "PCM_16"
            assert TINY["min_sec"] <= info.frames / SR <= TINY["max_sec"]
        if split != "train":
            trials = read_trials(out / split / "trials")
            assert {t.enroll for t in trials} | {t.test for t in trials} <= set(d.utts)
            assert {t.target for t in trials} == {True, False}
            assert summary["splits"][split]["trials"] == len(trials)
    assert not (speakers["train"] & speakers["test"] or speakers["train"] & speakers["dev"]
                or speakers["test"] & speakers["dev"])
    assert summary["utterances"] == 6 + 9 + 4 and summary["hours"] > 0


def test_corpus_is_byte_identical_for_any_worker_count(corpus, tmp_path):
    root, _ = corpus
    make_corpus(tmp_path / "b", seed=3, num_workers=2, **TINY)
    assert _files(root / "a") == _files(tmp_path / "b")
    make_corpus(tmp_path / "c", seed=4, num_workers=1, **TINY)
    a, c = _files(root / "a"), _files(tmp_path / "c")
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.endswith(".wav"))


def test_cli_writes_a_corpus_without_importing_torch(tmp_path):
    code = (
        "import runpy, sys; sys.argv = ['make_synthetic_corpus.py', '--out', sys.argv[1], "
        "'--train-speakers', '2', '--train-utts', '1', '--test-speakers', '2', '--test-utts', '2', "
        "'--dev-speakers', '0', '--min-sec', '0.5', '--max-sec', '0.6', '--workers', '1']; "
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__'); "
        "assert 'torch' not in sys.modules, 'the CLI imported torch'"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wrote 6 utterances" in done.stderr
    assert len(read_kaldi_map(tmp_path / "test" / "utt2spk")) == 4
    assert not (tmp_path / "dev").exists()
