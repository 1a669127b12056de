"""Robustness corpora: small speaker sets under conditions the synthetic recipe never had.

A model tuned on :mod:`xvector.corpora.synthetic` proves the pipeline, not the model. These
corpora vary what real data varies and that generator holds fixed:

* **voices** from another source: eSpeak NG TTS speakers (``voices="tts"``, :mod:`xvector.corpora.tts`:
  language × variant × pitch × speed), or our source-filter generator drawn from ranges the
  synthetic recipe never used (``voices="formant"``: wider F0, tract-length, bandwidth and rate
  ranges, and speakers grouped into "accents" that share vowel offsets, as a language would);
* **few speakers** (24 × 20 utterances by default), 2-6 s each;
* **level**: the active speech level spread over ``level_dbfs`` (-35…-12 dBFS), not
  peak-normalised;
* **digital silence**: exact zeros at both edges and inside (TTS pauses, edited files);
* **channel**: half the utterances through a random EQ and band limits;
* **noise**: ``dev_noisy/`` and ``test_noisy/`` are copies of ``dev/`` and ``test/`` (same ids
  and trials) with white, pink, brown noise or babble (3-6 talkers of speakers outside every
  split) at 0-15 dB SNR.

Layout under ``out_dir``: ``train/``, ``dev/``, ``test/``, ``dev_noisy/``, ``test_noisy/``, each
with ``wav.scp``, ``utt2spk``, ``spk2utt`` and ``utt2lang`` (the TTS language or the accent);
the evaluation dirs also hold ``trials`` (half targets) and ``trials_same_lang`` (the same targets
against nontargets of the same language only: the harder half). Train, dev and test speakers are
disjoint; dev is for every choice (validation EER, defaults), test is read once per reported run.

Example:
    >>> import tempfile
    >>> s = make_robust_corpus(tempfile.mkdtemp(), voices="formant", n_train_speakers=2, n_train_utts=2,
    ...                        n_eval_speakers=4, n_eval_utts=2, min_sec=0.6, max_sec=0.8, num_workers=1)
    >>> sorted(s["splits"]), s["splits"]["test"]["speakers"]
    (['dev', 'dev_noisy', 'test', 'test_noisy', 'train'], 4)
"""

from __future__ import annotations

import io
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from xvector.corpora import conditions as cond
from xvector.corpora import tts
from xvector.corpora.synthetic.voice import N_VOWELS, SpeakerParams, synthesize_utterance
from xvector.data.lists import Trial, utt2spk_to_spk2utt, write_kaldi_map, write_trials
from xvector.data.trials import even_quotas, make_trials

log = logging.getLogger(__name__)

VOICES = ("tts", "formant")
NOISES = ("white", "pink", "brown", "babble")
_BETA = {"white": 0.0, "pink": 1.0, "brown": 2.0}
_SPLITS = {"train": 0, "dev": 1, "test": 2, "babble": 3}
_S_SPK, _S_UTT, _S_NOISE, _S_TRIALS, _S_LANG = 11, 12, 13, 14, 15  # RNG stream tags


def _formant_speaker(rng: np.random.Generator, accent: np.ndarray) -> SpeakerParams:
    """A source-filter voice from ranges the synthetic corpus never draws (wider, with children)."""
    kind = rng.choice(["low", "high", "child"], p=[0.45, 0.45, 0.1])
    f0 = {"low": (70, 160), "high": (150, 300), "child": (240, 380)}[kind]
    scale = {"low": (0.78, 1.05), "high": (0.92, 1.2), "child": (1.12, 1.3)}[kind]
    return SpeakerParams(
        group="low" if kind == "low" else "high", f0_mean_hz=float(rng.uniform(*f0)),
        f0_range_st=float(rng.uniform(0.5, 5.0)), formant_scale=float(rng.uniform(*scale)),
        bandwidth_scale=float(rng.uniform(0.45, 2.4)), tilt_db_per_oct=float(rng.uniform(-3.0, 9.0)),
        open_quotient=float(rng.uniform(0.35, 0.85)), breathiness=float(rng.uniform(0.0, 0.8)),
        jitter=float(rng.uniform(0.001, 0.03)), shimmer=float(rng.uniform(0.01, 0.2)),
        rate=float(rng.uniform(0.65, 1.45)), vowel_offsets=accent + rng.normal(0.0, 0.06, (N_VOWELS, 4)),
        high_pole_offsets=rng.normal(0.0, 0.15, 4), zero_hz=float(rng.uniform(3000, 6500)),
        nasal_pole_hz=float(rng.uniform(200, 500)), nasality=float(rng.uniform(0.0, 1.0)),
    )


def _speakers(voices: str, seed: int, split: str, n: int, n_langs: int) -> list[tuple[object, str]]:
    """``n`` (voice, language) pairs of ``split``; languages are shared by several speakers."""
    rng = np.random.default_rng([seed, _S_SPK, _SPLITS[split]])
    lang_rng = np.random.default_rng([seed, _S_LANG])  # one language pool for the whole corpus
    if voices == "tts":
        pool = tuple(lang_rng.choice(tts.LANGUAGES, size=min(len(tts.LANGUAGES), 2 * n_langs), replace=False))
        # Each split takes n_langs of the pool: evaluation splits meet languages seen in training and new ones.
        langs = tuple(rng.choice(pool, size=n_langs, replace=False))
        return [(v, v.language) for v in tts.sample_voices(rng, n, langs)]
    accents = {f"accent{i:02d}": lang_rng.normal(0.0, 0.12, (N_VOWELS, 4)) for i in range(2 * n_langs)}
    names = list(rng.choice(sorted(accents), size=n_langs, replace=False))
    out = []
    for _ in range(n):
        lang = str(rng.choice(names))
        out.append((_formant_speaker(rng, accents[lang]), lang))
    return out


_BABBLE: list[np.ndarray] = []  # babble talkers, set once per worker process (not pickled per job)


def _set_babble(talkers: list[np.ndarray]) -> None:
    _BABBLE[:] = talkers


def _voice(speaker: object, rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    if isinstance(speaker, tts.TTSVoice):
        words = max(2, int(round(seconds * speaker.speed / 60 * 0.75)))
        return tts.synthesize(speaker, tts.random_text(rng, words), rng, sample_rate)
    return synthesize_utterance(speaker, rng, seconds, sample_rate)


def _render(job: tuple) -> tuple[str, float]:
    """One utterance: voice → channel → level → digital silence; its noisy copy if asked."""
    (path, noisy_path, seed, split, spk, utt, speaker, min_sec, max_sec, level, sr) = job
    rng = np.random.default_rng([seed, _S_UTT, _SPLITS[split], spk, utt])
    wav = _voice(speaker, rng, float(rng.uniform(min_sec, max_sec)), sr)
    if rng.random() < 0.5:
        wav = cond.random_channel(wav, rng, sr)
    wav = cond.set_level(wav, float(rng.uniform(*level)))
    wav = cond.add_digital_silence(wav, rng, lead_sec=(0.05, 0.8), trail_sec=(0.05, 0.8),
                                   gaps=int(rng.integers(0, 3)), sample_rate=sr)
    _write(path, wav, sr)
    kind = ""
    if noisy_path:
        nrng = np.random.default_rng([seed, _S_NOISE, _SPLITS[split], spk, utt])
        kind = str(nrng.choice(NOISES))
        snr = float(nrng.uniform(0.0, 15.0))
        if kind == "babble":
            talkers = [_BABBLE[i] for i in nrng.choice(len(_BABBLE), size=int(nrng.integers(3, 7)), replace=False)]
            noisy = cond.add_babble(wav, talkers, snr, nrng)
        else:
            noisy = cond.add_noise(wav, cond.colored_noise(len(wav), _BETA[kind], nrng), snr)
        peak = float(np.abs(noisy).max())
        _write(noisy_path, noisy / peak * 0.99 if peak > 0.99 else noisy, sr)
    return kind, len(wav) / sr


def _write(path: str, wav: np.ndarray, sample_rate: int) -> None:
    buf = io.BytesIO()  # one write: soundfile fsyncs real files on close
    sf.write(buf, wav, sample_rate, subtype="PCM_16", format="WAV")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue())


def same_language_trials(trials: list[Trial], utt2spk: dict[str, str], utt2lang: dict[str, str],
                         num_nontargets: int, seed: int) -> list[Trial]:
    """The targets of ``trials`` with ``num_nontargets`` nontargets whose two speakers share a language."""
    by_lang: dict[str, dict[str, str]] = {}
    for u, s in utt2spk.items():
        by_lang.setdefault(utt2lang[u], {})[u] = s
    groups = [g for g in by_lang.values() if len(set(g.values())) >= 2]
    if not groups:
        raise ValueError("no language is shared by two speakers: no same-language nontargets")
    groups.sort(key=lambda g: sorted(g)[0])
    sizes = [np.bincount(np.unique(list(g.values()), return_inverse=True)[1]) for g in groups]
    capacity = [int((n.sum() ** 2 - (n**2).sum()) // 2) for n in sizes]  # distinct cross-speaker pairs
    out = [t for t in trials if t.target]
    for i, (g, share) in enumerate(zip(groups, even_quotas(num_nontargets, capacity))):
        if share:
            out += make_trials(g, 0, share, seed=seed + i)
    return sorted(out, key=lambda t: (t.enroll, t.test))


def make_robust_corpus(
    out_dir: str | os.PathLike,
    *,
    voices: str = "tts",
    n_train_speakers: int = 24,
    n_train_utts: int = 20,
    n_eval_speakers: int = 24,
    n_eval_utts: int = 10,
    n_langs: int = 6,
    min_sec: float = 2.0,
    max_sec: float = 6.0,
    level_dbfs: tuple[float, float] = (-35.0, -12.0),
    num_trials: int = 2000,
    sample_rate: int = 16000,
    seed: int = 0,
    num_workers: int = 2,
) -> dict:
    """Write a robustness corpus (layout in the module docstring).

    Args:
        voices: ``"tts"`` (needs ``espeak-ng``) or ``"formant"``.
        n_train_speakers, n_train_utts: training speakers and utterances per speaker.
        n_eval_speakers, n_eval_utts: speakers and utterances of each of dev and test.
        n_langs: languages (TTS) or accents (formant) per split, shared by its speakers.
        num_trials: trials per evaluation list, half targets (fewer if the split has fewer pairs).

    Returns:
        Summary: ``out_dir``, ``voices``, ``seconds`` (wall time), per split ``speakers``,
        ``utterances``, ``hours``, and for noisy splits the count of each noise kind.

    Raises:
        ValueError: for unknown ``voices``; RuntimeError when ``voices="tts"`` and espeak-ng is missing.
    """
    if voices not in VOICES:
        raise ValueError(f"voices must be one of {VOICES}, got {voices!r}")
    if voices == "tts" and not tts.espeak_available():
        raise RuntimeError("voices='tts' needs espeak-ng (apt-get install espeak-ng); or use voices='formant'")
    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    babble_rng = np.random.default_rng([seed, _S_UTT, _SPLITS["babble"]])
    babble = [_voice(spk, babble_rng, 4.0, sample_rate) for spk, _ in _speakers(voices, seed, "babble", 8, n_langs)]
    jobs, lists = [], {}
    for split, n_spk, n_utt in (("train", n_train_speakers, n_train_utts), ("dev", n_eval_speakers, n_eval_utts),
                                ("test", n_eval_speakers, n_eval_utts)):
        utt2spk, utt2lang = {}, {}
        for s, (speaker, lang) in enumerate(_speakers(voices, seed, split, n_spk, n_langs)):
            spk_id = f"{split}-spk{s:03d}"
            for u in range(n_utt):
                utt = f"{spk_id}-utt{u:03d}"
                utt2spk[utt], utt2lang[utt] = spk_id, lang
                noisy = str(out / "wav_noisy" / spk_id / f"{utt}.wav") if split != "train" else ""
                jobs.append((str(out / "wav" / spk_id / f"{utt}.wav"), noisy, seed, split, s, u, speaker,
                             min_sec, max_sec, level_dbfs, sample_rate))
        lists[split] = (utt2spk, utt2lang)
    _set_babble(babble)
    if num_workers > 1:
        with ProcessPoolExecutor(num_workers, initializer=_set_babble, initargs=(babble,)) as pool:
            results = list(pool.map(_render, jobs, chunksize=max(1, len(jobs) // (8 * num_workers))))
    else:
        results = [_render(job) for job in jobs]
    seconds = {j[0]: r[1] for j, r in zip(jobs, results)}
    kinds = {j[1]: r[0] for j, r in zip(jobs, results) if j[1]}

    summary: dict = {"out_dir": str(out), "voices": voices, "splits": {}}
    for split, (utt2spk, utt2lang) in lists.items():
        trials = same = None
        if split != "train":
            n_t = min(num_trials // 2, sum(len(v) * (len(v) - 1) // 2 for v in utt2spk_to_spk2utt(utt2spk).values()))
            trials = make_trials(utt2spk, n_t, n_t, seed=seed + _SPLITS[split], clip=True)
            same = same_language_trials(trials, utt2spk, utt2lang, n_t, seed + 100 * _SPLITS[split])
        for name, folder in ((split, "wav"), (f"{split}_noisy", "wav_noisy")):
            if folder == "wav_noisy" and split == "train":
                continue
            d = out / name
            wavs = {u: str(out / folder / s / f"{u}.wav") for u, s in utt2spk.items()}
            write_kaldi_map(d / "wav.scp", wavs)
            write_kaldi_map(d / "utt2spk", utt2spk)
            write_kaldi_map(d / "spk2utt", utt2spk_to_spk2utt(utt2spk))
            write_kaldi_map(d / "utt2lang", utt2lang)
            info = {"speakers": len(set(utt2spk.values())), "utterances": len(wavs),
                    "hours": round(sum(seconds[str(out / "wav" / s / f"{u}.wav")] for u, s in utt2spk.items()) / 3600, 3)}
            if trials is not None:
                write_trials(d / "trials", trials)
                write_trials(d / "trials_same_lang", same)
                info["trials"], info["trials_same_lang"] = len(trials), len(same)
            if folder == "wav_noisy":
                info["noise"] = {k: sum(1 for p in wavs.values() if kinds[p] == k) for k in NOISES}
            summary["splits"][name] = info
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    log.info("robust corpus (%s voices) in %s: %s", voices, out, summary["splits"])
    return summary
